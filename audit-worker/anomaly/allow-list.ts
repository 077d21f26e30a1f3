/** anomaly.allow_list: subjects the rules alert on but never ban. */
import { BlockList, isIP } from 'node:net';
import type { AnomalyConfig } from '../../common/config/anomaly-schema.js';
import type { SubjectKind } from './rules.js';

export class AllowList {
  private readonly ips = new BlockList();
  private readonly consumers: ReadonlySet<string>;

  constructor(config: AnomalyConfig['allow_list']) {
    for (const range of config.ips) {
      const [address = '', prefix] = range.split('/');
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.ips.addAddress(address, type);
      else this.ips.addSubnet(address, Number(prefix), type);
    }
    this.consumers = new Set(config.consumers);
  }

  has(kind: SubjectKind, subject: string): boolean {
    if (kind === 'consumer') return this.consumers.has(subject);
    if (kind !== 'ip') return false;
    const type = isIP(subject);
    return type !== 0 && this.ips.check(subject, type === 6 ? 'ipv6' : 'ipv4');
  }
}
