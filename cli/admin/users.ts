/**
 * `admin users add|set-password|disable|enable|list`: the users of the sidecar's own issuer
 * (common/users.ts). Passwords are read from stdin (password-input.ts), hashed here with the
 * configured bcrypt cost, and never printed. A new password and a disable end the user's
 * logins: their refresh families are refused from then on, and their access tokens issued so far
 * are revoked (a consumer revocation, audited like `revoke --consumer`). Adding and enabling a
 * user are audited too (`user_add`, `user_enable`): every change of who may log in is recorded.
 */
import bcrypt from 'bcryptjs';
import { ownIssuerOf, type GatewayConfig } from '../../common/config/schema.js';
import { adminCliActor } from '../../common/security-event.js';
import { revokeConsumer } from '../../common/security-state.js';
import { passwordProblem, USERNAME, Users } from '../../common/users.js';
import { prepare, publishOrFail } from './audited.js';
import type { BansRun } from './bans.js';
import { readPassword } from './password-input.js';
import { reasonOf, UsageError, type Options } from './usage.js';

export const USERS_ACTIONS = ['add', 'set-password', 'disable', 'enable', 'list'] as const;
export type UsersAction = (typeof USERS_ACTIONS)[number];

const GROUP = /^[A-Za-z0-9._-]{1,64}$/;

export function usersCommand(action: UsersAction, args: string[], options: Options, config: () => GatewayConfig): BansRun {
  const own = ownIssuerOf(config());
  if (!own) throw new UsageError('the config has no token_issuing (and no issuer with sidecar_keys): there are no users to manage');
  if (action === 'list') {
    if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
    return async (redis, keys) => printUsers(await new Users(redis, keys).list(), options.json === true);
  }
  const [username, ...extra] = args;
  if (username === undefined || !USERNAME.test(username)) throw new UsageError(`users ${action} needs a USERNAME: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  if (action !== 'add' && (options.groups !== undefined || options.tier !== undefined)) throw new UsageError(`users ${action} does not take --groups or --tier`);
  const consumer = `${own.issuer.name}:${username}`;

  if (action === 'add') {
    const groups = options.groups === undefined ? [] : options.groups.split(',').filter(Boolean);
    const bad = groups.find((g) => !GROUP.test(g));
    if (bad !== undefined) throw new UsageError(`--groups: ${bad} is not a group name (1-64 of A-Z a-z 0-9 . _ -)`);
    const tier = options.tier;
    if (tier !== undefined && !Object.hasOwn(config().tiers, tier)) throw new UsageError(`--tier ${tier} is not a tier of the config`);
    const summary = `groups ${groups.join(',') || '(none)'}, tier ${tier ?? '(default)'}`;
    const event = prepare({ kind: 'user_add', actor: adminCliActor(), target: { consumer }, reason: `${reasonOf(options, 'users add', 'user added')} [${summary}]` });
    return async (redis, keys) => {
      const hash = await hashedPassword(own.issuing.bcrypt_cost);
      if (!(await new Users(redis, keys).add({ username, hash, groups, tier }))) throw new UsageError(`user ${username} already exists (users set-password changes a password)`);
      const done = `added user ${username} (consumer ${consumer}, ${summary})`;
      await publishOrFail(redis, keys, event, done);
      console.log(`${done} (audited as ${event.event_id})`);
    };
  }
  if (action === 'enable') {
    const event = prepare({ kind: 'user_enable', actor: adminCliActor(), target: { consumer }, reason: reasonOf(options, 'users enable', 'user enabled') });
    return async (redis, keys) => {
      if (!(await new Users(redis, keys).setDisabled(username, false))) throw new Error(`no user ${username}`);
      const done = `enabled user ${username}`;
      await publishOrFail(redis, keys, event, done);
      console.log(`${done} (audited as ${event.event_id})`);
    };
  }
  // set-password and disable end the user's logins, and revoke the access tokens issued so far.
  const event = prepare({ kind: 'revoke', actor: adminCliActor(), target: { consumer }, reason: reasonOf(options, `users ${action}`, action === 'disable' ? 'user disabled' : 'password changed') });
  return async (redis, keys) => {
    const users = new Users(redis, keys);
    const changed = action === 'disable' ? await users.setDisabled(username, true) : await users.setPassword(username, await hashedPassword(own.issuing.bcrypt_cost));
    if (!changed) throw new Error(`no user ${username}`);
    const second = await revokeConsumer(redis, keys, consumer);
    const done = `${action === 'disable' ? 'disabled' : 'set the password of'} user ${username}; its logins are over and its tokens issued until now (iat <= ${second}) revoked`;
    await publishOrFail(redis, keys, event, done);
    console.log(`${done} (audited as ${event.event_id})`);
  };
}

async function hashedPassword(cost: number): Promise<string> {
  const password = await readPassword('password: ');
  const problem = passwordProblem(password);
  if (problem) throw new UsageError(`the password ${problem}`);
  return bcrypt.hash(password, cost);
}

function printUsers(users: Awaited<ReturnType<Users['list']>>, json: boolean): void {
  const rows = users.map((u) => ({ username: u.username, groups: u.groups, tier: u.tier ?? null, disabled: u.disabled, created: new Date(u.createdAt).toISOString() }));
  if (json) return void console.log(JSON.stringify(rows));
  if (rows.length === 0) return void console.log('no users');
  for (const r of rows) console.log(`${r.username}\t${r.disabled ? 'disabled' : 'enabled'}\tgroups=${r.groups.join(',') || '-'}\ttier=${r.tier ?? '-'}\tcreated=${r.created}`);
}
