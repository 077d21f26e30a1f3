/** `npm run bench:decisions`: decision-cost.ts alone (BENCH_SECONDS per combination, default 5). */
import { algorithmCosts, decisionCosts, describeAlgorithms, describeCost } from './decision-cost.js';
import { stopAll } from './spawn.js';

try {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  for (const cost of await decisionCosts(seconds)) console.log(describeCost(cost));
  for (const line of describeAlgorithms(await algorithmCosts(seconds))) console.log(line);
} finally {
  await stopAll();
}
