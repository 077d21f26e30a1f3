/**
 * The WebSockets open through this gateway, by what a revocation or a ban can name: the token's
 * jti, its consumer (with the token's iat, for a consumer revocation of the tokens issued up to a
 * second), the key that signed it (kid), and the client ip. SecurityWatch closes the ones a
 * change of security state now refuses.
 */
export interface OpenSocket {
  jti: string | null;
  consumer: string | null;
  /** Unix seconds; 0 without a token or iat. */
  iat: number;
  kid: string | null;
  clientIp: string;
  /** Ends the socket with close code 1008 and this reason (once). */
  close(reason: string): void;
}

type Field = 'jti' | 'consumer' | 'kid' | 'clientIp';

export class OpenSockets {
  private readonly by: Record<Field, Map<string, Set<OpenSocket>>> = { jti: new Map(), consumer: new Map(), kid: new Map(), clientIp: new Map() };

  get size(): number {
    let n = 0;
    for (const set of this.by.clientIp.values()) n += set.size;
    return n;
  }

  /** Every open socket (each once). */
  all(): OpenSocket[] {
    return [...new Set([...this.by.clientIp.values()].flatMap((set) => [...set]))];
  }

  add(socket: OpenSocket): void {
    for (const field of Object.keys(this.by) as Field[]) {
      const value = socket[field];
      if (value === null) continue;
      let set = this.by[field].get(value);
      if (!set) this.by[field].set(value, (set = new Set()));
      set.add(socket);
    }
  }

  remove(socket: OpenSocket): void {
    for (const field of Object.keys(this.by) as Field[]) {
      const value = socket[field];
      if (value === null) continue;
      const set = this.by[field].get(value);
      set?.delete(socket);
      if (set?.size === 0) this.by[field].delete(value);
    }
  }

  /** Closes the sockets whose `field` is `value` (and, when given, that `also` accepts); resolves how many. */
  closeWhere(field: Field, value: string, reason: string, also: (s: OpenSocket) => boolean = () => true): number {
    const matching = [...(this.by[field].get(value) ?? [])].filter(also);
    for (const socket of matching) socket.close(reason);
    return matching.length;
  }
}
