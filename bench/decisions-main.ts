/** `npm run bench:decisions`: decision-cost.ts alone (BENCH_SECONDS per combination, default 5). */
import { decisionCosts, describeCost } from './decision-cost.js';
import { stopAll } from './spawn.js';

try {
  for (const cost of await decisionCosts(Number(process.env.BENCH_SECONDS ?? 5))) console.log(describeCost(cost));
} finally {
  await stopAll();
}
