import { ClassicLevel } from 'classic-level';
const db = new ClassicLevel('/tmp/exp/lockdb2');
try { await db.open(); console.log(process.pid, 'opened'); } catch (e) { console.log(process.pid, 'failed', e.code, e.cause?.code, e.cause?.message); process.exit(0); }
await new Promise(r => setTimeout(r, 3000));
await db.close();
