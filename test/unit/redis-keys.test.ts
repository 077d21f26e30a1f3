import { expect } from 'chai';
import { RedisKeys } from '../../common/redis-keys.js';
import { keySlot } from '../../common/redis-slot.js';

describe('Redis key layouts', () => {
  it('keeps the single layout exactly as it was, so a deployed Redis keeps its bans, counters and queue', () => {
    const keys = new RedisKeys('gw');
    expect(keys.revokedJti('j:1')).to.equal('gw:revoked:jti:j%3A1');
    expect(keys.revokedConsumer('e2e:alice')).to.equal('gw:revoked:consumer:e2e%3Aalice');
    expect(keys.banIp('203.0.113.7')).to.equal('gw:ban:ip:203.0.113.7');
    expect(keys.banConsumer('e2e:alice')).to.equal('gw:ban:consumer:e2e%3Aalice');
    expect(keys.rateCounter('tier:free', ['consumer:e2e:alice'], 'minute')).to.equal('gw:rl:tier%3Afree:consumer%3Ae2e%3Aalice:minute');
    expect(keys.anomalyCounter('r', 'ip:1.2.3.4', 7)).to.equal('gw:anomaly:count:r:ip%3A1.2.3.4:7');
    expect(keys.banOffences('ip:1.2.3.4')).to.equal('gw:anomaly:offences:ip%3A1.2.3.4');
    expect(keys.queuePrefix).to.equal('gw:bull');
  });

  it("puts a consumer's revocation, ban and counters in one slot in the cluster layout, and an ip's ban and counters in another", () => {
    const keys = new RedisKeys('gw', 'cluster');
    const consumer = [keys.revokedConsumer('e2e:alice'), keys.banConsumer('e2e:alice'), keys.rateCounter('tier:free', ['consumer:e2e:alice'], 'minute'), keys.rateCounter('route:users', ['consumer:e2e:alice'], 'day')];
    expect(consumer[0]).to.equal('gw:{consumer:e2e%3Aalice}:revoked');
    expect(new Set(consumer.map(keySlot)).size).to.equal(1);
    const ip = [keys.banIp('2001:db8::1'), keys.rateCounter('route:users', ['ip:2001:db8::1'], 'second')];
    expect(ip[0]).to.equal('gw:{ip:2001%3Adb8%3A%3A1}:ban');
    expect(new Set(ip.map(keySlot)).size).to.equal(1);
    expect(keys.revokedJti('j1')).to.equal('gw:{jti:j1}:revoked');
    expect(keys.rateCounter('route:r', ['header:x-key:a}b{c'], 'hour')).to.equal('gw:{header:x-key%3Aa%7Db%7Bc}:rl:route%3Ar:hour');
    const anomaly = [keys.anomalyCounter('r', 'ip:1.2.3.4', 1), keys.anomalySeen('e'), keys.anomalyAlert('r', 's'), keys.anomalyVolume('c'), keys.anomalyBanMarker('b'), keys.banOffences('ip:1.2.3.4'), keys.anomalySighting('p')];
    expect(new Set(anomaly.map(keySlot)).size).to.equal(1);
    expect(keys.queuePrefix).to.equal('gw:{bull}');
  });

  it('finds and decodes ban keys of the cluster layout, and owns only its own kind', () => {
    const keys = new RedisKeys('gw', 'cluster');
    const [ip, consumer, jti] = keys.banPatterns();
    expect(ip).to.include({ match: 'gw:{ip:*}:ban' });
    expect(consumer).to.include({ match: 'gw:{consumer:*}:ban' });
    expect(jti).to.include({ match: 'gw:{jti:*}:revoked' });
    expect(ip!.subjectOf(keys.banIp('2001:db8::1'))).to.equal('2001:db8::1');
    expect(jti!.subjectOf(keys.revokedJti('a:b}c'))).to.equal('a:b}c');
    expect(ip!.owns(keys.banIp('1.2.3.4'))).to.equal(true);
    expect(ip!.owns(keys.banConsumer('1.2.3.4'))).to.equal(false);
    expect(ip!.owns(keys.rateCounter('route:r', ['ip:1.2.3.4'], 'hour'))).to.equal(false);
    expect(jti!.owns(keys.revokedConsumer('x'))).to.equal(false);
  });
});
