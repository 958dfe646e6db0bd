export default async function globalTeardown(): Promise<void> {
  await new Promise<void>((resolve) => (globalThis.__DYNALITE__ ? globalThis.__DYNALITE__.close(() => resolve()) : resolve()));
}
