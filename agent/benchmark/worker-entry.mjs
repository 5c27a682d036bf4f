// Worker threads on Node 20 ignore `--import tsx` in execArgv; register tsx here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
