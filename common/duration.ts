const UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** Parses `90s`, `15m`, `1h`, `7d` into seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhd])$/.exec(text);
  return match ? Number(match[1]) * UNITS[match[2] as keyof typeof UNITS] : undefined;
}
