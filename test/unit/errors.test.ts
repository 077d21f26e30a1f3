import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ALLOW_DETAILS, REASONS, TOKEN_INVALID_DETAILS } from '../../common/errors.js';
import { PROJECT_ROOT } from '../../common/paths.js';

const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');

describe('the reason registry', () => {
  it("matches the README's table of HTTP answers, reason by reason and status by status", () => {
    const table = Object.fromEntries([...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]));
    const registry = Object.fromEntries(Object.entries(REASONS).map(([reason, { status }]) => [reason, status]));
    expect(table).to.deep.equal(registry);
  });

  it('lists every token_invalid detail code in the README', () => {
    for (const detail of Object.keys(TOKEN_INVALID_DETAILS)) expect(readme).to.include(`\`${detail}\``);
  });

  it('lists every detail code of allowed requests in the README', () => {
    for (const detail of Object.keys(ALLOW_DETAILS)) expect(readme).to.include(`\`${detail}\``);
  });
});
