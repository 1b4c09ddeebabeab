// Worker entry: registers tsx's loader in this thread (hooks do not carry over to workers in Node 20),
// then loads the TypeScript worker named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
