import { expect } from 'chai';
import { normalizeTarget } from '../../gateway/request-target.js';

const pathOf = (url: string): string | undefined => normalizeTarget(url)?.path;

describe('request target', () => {
  it('resolves a dot-dot segment', () => {
    expect(normalizeTarget('/users/../payments')).to.deep.equal({ path: '/payments', search: '', encodedSlash: false });
  });

  it('drops empty segments', () => {
    expect(pathOf('//users///7')).to.equal('/users/7');
  });

  it('drops single-dot segments', () => {
    expect(pathOf('/users/./7/.')).to.equal('/users/7');
  });

  it('decodes a percent-encoded unreserved character', () => {
    expect(pathOf('/%75sers')).to.equal('/users');
    expect(pathOf('/%7Eme/%41')).to.equal('/~me/A');
  });

  it('resolves an encoded dot-dot segment after decoding it', () => {
    expect(pathOf('/users/%2e%2e/payments')).to.equal('/payments');
    expect(pathOf('/users/.%2E/payments')).to.equal('/payments');
  });

  it('keeps an encoded slash encoded and upper-cases its hex digits', () => {
    expect(pathOf('/users/a%2fb')).to.equal('/users/a%2Fb');
    expect(pathOf('/users/a%2Fb')).to.equal('/users/a%2Fb');
  });

  it('flags an encoded slash or backslash in the path, not in the query', () => {
    expect(normalizeTarget('/users/..%2fpayments')?.encodedSlash).to.equal(true);
    expect(normalizeTarget('/users/a%5Cb')?.encodedSlash).to.equal(true);
    expect(normalizeTarget('/users/a?b=%2f')?.encodedSlash).to.equal(false);
  });

  it('refuses an encoded control character (NUL, CR, LF, DEL)', () => {
    for (const url of ['/users/a%00', '/users/a%0D%0Ab', '/users/%1f', '/users/%7F']) expect(normalizeTarget(url), url).to.equal(undefined);
  });

  it('keeps the query string as received', () => {
    expect(normalizeTarget('/users/../users/7?expand=orders&q=%2f a')).to.deep.equal({ path: '/users/7', search: '?expand=orders&q=%2f a', encodedSlash: false });
  });

  it('keeps a trailing slash', () => {
    expect(pathOf('/users/')).to.equal('/users/');
  });

  it('keeps the root path', () => {
    expect(pathOf('/')).to.equal('/');
  });

  it('does not climb above the root', () => {
    expect(pathOf('/../..')).to.equal('/');
    expect(pathOf('/../../payments')).to.equal('/payments');
  });

  it('refuses an invalid percent escape', () => {
    expect(normalizeTarget('/users/%zz')).to.equal(undefined);
    expect(normalizeTarget('/users/%2')).to.equal(undefined);
  });

  it('refuses a dot segment carrying a ; parameter (Tomcat and Spring read `..;` as `..`)', () => {
    for (const url of ['/users/..;/payments', '/users/..;a=b/payments', '/users/%2E%2e;/payments', '/users/.;/x', '/..;']) expect(normalizeTarget(url), url).to.equal(undefined);
  });

  it('keeps a ; parameter on an ordinary segment', () => {
    expect(pathOf('/users/7;v=1')).to.equal('/users/7;v=1');
    expect(pathOf('/users/...;x')).to.equal('/users/...;x');
  });

  it('refuses a backslash', () => {
    expect(normalizeTarget('/users\\..\\payments')).to.equal(undefined);
  });

  it('refuses a space in the path', () => {
    expect(normalizeTarget('/users/a b')).to.equal(undefined);
  });

  it('refuses an absolute-form target', () => {
    expect(normalizeTarget('http://x/')).to.equal(undefined);
  });

  it('refuses the asterisk-form target', () => {
    expect(normalizeTarget('*')).to.equal(undefined);
  });

  it('refuses an empty target', () => {
    expect(normalizeTarget('')).to.equal(undefined);
  });
});
