/** Shard 1 of 2 of `npm run test:fuzz` (apiFuzz.ts says how the run is split). */
import { fuzzApiShard } from './apiFuzz.ts';

fuzzApiShard(0, 2);
