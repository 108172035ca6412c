// Bootstrap of a decode worker thread: registers the TypeScript loader (workers do not inherit tsx's
// register() from the main thread), then runs loader-worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./loader-worker.ts');
