/**
 * V8 flags for the gateway, set before anything allocates (main.ts imports this first).
 *
 * Allocation-site pretenuring off: seeing the buffered audit events survive a scavenge, V8 starts
 * allocating them in old space, where their dead copies keep young objects alive. Measured at
 * 1,600 req/s, each scavenge then promoted 2.7 MB (against 0.3 MB), scavenges took 6–7 ms (against
 * ~2 ms), and a 5–16 ms mark-compact ran every ~4 s, swinging RSS by ~75 MB.
 *
 * Old generation allowed to grow 50% past the live heap before the next mark-compact: V8's own
 * factor ranges up to 4x, so RSS wandered with it (chunk medians 116–154 MiB over soaks whose live
 * heap stayed ~23 MB). With the cap, five soaks of ~330k requests each stayed within 119–125 MiB,
 * at no measurable CPU cost (gateway 244 vs 234 µs per request, medians of 3 alternating soaks).
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-allocation-site-pretenuring');
setFlagsFromString('--heap-growing-percent=50');
