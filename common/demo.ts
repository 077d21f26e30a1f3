/**
 * Public demo values that `npm start` and the admin CLI use in development when the real
 * variable is unset. They are printed in the README on purpose: never use them in production.
 */
export const DEMO_ENV: Readonly<Record<string, string>> = Object.freeze({
  DEMO_JWT_SECRET: 'demo-only-secret-published-in-the-readme-0123456789',
  SIGNING_KEY_SECRET: 'demo-only-signing-key-secret-published-in-the-readme',
});

/** `env` with the demo values filled in where unset, unless NODE_ENV is production. */
export function withDemoDefaults(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.NODE_ENV === 'production') return env;
  const filled: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(DEMO_ENV)) if (!filled[name]) filled[name] = value;
  return filled;
}
