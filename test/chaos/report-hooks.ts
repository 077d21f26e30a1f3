/** Mocha root hooks (`--require`): print the chaos table after every test has run. */
import { renderTable } from './report.js';

export const mochaHooks = {
  afterAll(): void {
    const table = renderTable();
    if (table) console.log(`\n${table}\n`);
  },
};
