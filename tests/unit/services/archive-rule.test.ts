import { matchesArchiveRule, parseArchiveRule } from '../../../src/services/archive-rule.js';

const order = {
  type: 'order',
  amount: 1500,
  priority: 'high',
  customer: { tier: 'gold' },
  tags: ['a', 'vip'],
  test: null,
  paid: true,
};

describe('archive rule', () => {
  it.each([
    ['*', true],
    ['type=order', true],
    ['type=refund', false],
    ['type=refund|order', true],
    ['type!=order', false],
    ['status!=draft', true],
    ['amount=1500', true],
    ['amount>=1500', true],
    ['amount>1500', false],
    ['amount<2000,amount>1000', true],
    ['customer.tier=gold', true],
    ['customer.tier=silver', false],
    ['priority', true],
    ['missing', false],
    ['!missing', true],
    ['!test', true],
    ['test', false],
    ['tags=vip', true],
    ['paid=true', true],
    ['type=order,priority=low', false],
    ['priority="high"', true],
  ])('%s -> %s', (rule, expected) => {
    expect(matchesArchiveRule(parseArchiveRule(rule), order)).toBe(expected);
  });

  it('quoted values may hold commas and pipes', () => {
    const rule = parseArchiveRule('note="a,b|c",type=x');
    expect(rule.clauses).toEqual([
      { kind: 'compare', path: 'note', op: '=', values: ['a,b|c'] },
      { kind: 'compare', path: 'type', op: '=', values: ['x'] },
    ]);
    expect(matchesArchiveRule(rule, { note: 'a,b|c', type: 'x' })).toBe(true);
  });

  it('numeric comparisons never match non-numbers', () => {
    expect(matchesArchiveRule(parseArchiveRule('amount>1'), { amount: '5' })).toBe(false);
  });

  it('a non-object body matches only rules without clauses', () => {
    expect(matchesArchiveRule(parseArchiveRule('*'), 'text')).toBe(true);
    expect(matchesArchiveRule(parseArchiveRule('!x'), 'text')).toBe(true);
    expect(matchesArchiveRule(parseArchiveRule('x'), 42)).toBe(false);
  });

  it.each([
    ['type=', 'expected a value after "=" in clause 1 ("type=")'],
    ['amount>x', 'expected a number after ">" in clause 1 ("amount>x")'],
    ['a b=c', 'expected a field name or dot path in clause 1 ("a b=c")'],
    ['!a=b', 'expected either !field or a comparison in clause 1 ("!a=b"), not both'],
    ['note="open', 'expected a closing double quote'],
    ['type=order,', 'expected field, !field or field<op>value in clause 2 ("")'],
  ])('rejects %j: %s', (rule, message) => {
    expect(() => parseArchiveRule(rule)).toThrow(message);
  });
});
