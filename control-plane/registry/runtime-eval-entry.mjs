// A forked child with execArgv [] does not inherit `--import tsx`: register tsx here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./runtime-eval-worker.ts');
