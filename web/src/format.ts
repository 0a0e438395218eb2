/**
 * Numbers and dates for display: in the host app's or the viewer's locale, the org's currency and the org's time zone.
 * Decimal strings go to Intl as strings, so formatting never rounds through a float.
 */
import { compareDecimal, shownParts } from './decimal.ts';

/** A total and its parts as shown: the parts add up to the total to the last digit shown. */
export interface ShownParts {
  total: string;
  parts: string[];
}

export interface Formats {
  locale: string;
  currency: string;
  timeZone: string;
  credits(value: string): string;
  money(value: string, currency?: string): string;
  /** A money total and its parts (which add up to it), rounded so the parts shown add up to the total shown. */
  moneyParts(total: string, parts: string[], currency?: string): ShownParts;
  /** Credits likewise. */
  creditParts(total: string, parts: string[]): ShownParts;
  /** A unit price: down to the eighth decimal the API gives, so small prices do not show as zero. */
  price(value: string, currency: string): string;
  count(value: number): string;
  /** A priced quantity given as a decimal string (tokens, minutes, images), to two decimals. */
  quantity(value: string): string;
  /** A duration given in milliseconds, in seconds to a tenth. */
  seconds(ms: number): string;
  share(value: string): string;
  /** A percentage the API gives in percent ('17.0' is 17 %), formatted as shares are. */
  percent(value: string): string;
  tokens(value: number): string;
  /** A file's size given in bytes, in decimal units to a tenth (2.3 MB; 512 bytes). */
  fileSize(bytes: number): string;
  date(iso: string): string;
  dateTime(iso: string): string;
  day(isoDate: string): string;
  month(isoMonth: string): string;
}

const asNumeric = (value: string) => value as Intl.StringNumericLiteral;

export function createFormats(currency: string, timeZone: string, locale: string): Formats {
  const CREDIT_DIGITS = 2;
  const credits = new Intl.NumberFormat(locale, { maximumFractionDigits: CREDIT_DIGITS });
  const moneyFormats = new Map<string, [Intl.NumberFormat, Intl.NumberFormat]>();
  const moneyFor = (code: string) => {
    let pair = moneyFormats.get(code);
    if (!pair) {
      pair = [
        new Intl.NumberFormat(locale, { style: 'currency', currency: code }),
        // Cents hide the cost of a single call: below one unit, up to four decimals.
        new Intl.NumberFormat(locale, { style: 'currency', currency: code, maximumFractionDigits: 4 }),
      ];
      moneyFormats.set(code, pair);
    }
    return pair;
  };
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const tenths = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const compact = new Intl.NumberFormat(locale, { notation: 'compact', maximumFractionDigits: 1 });
  const share = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
  const sizes = (['kilobyte', 'megabyte', 'gigabyte', 'terabyte'] as const).map(
    (unit) => new Intl.NumberFormat(locale, { style: 'unit', unit, maximumFractionDigits: 1 }),
  );
  const bytes = new Intl.NumberFormat(locale, { style: 'unit', unit: 'byte', unitDisplay: 'long' });
  const date = new Intl.DateTimeFormat(locale, { timeZone, dateStyle: 'medium' });
  const dateTime = new Intl.DateTimeFormat(locale, { timeZone, dateStyle: 'medium', timeStyle: 'short' });
  const day = new Intl.DateTimeFormat(locale, {
    timeZone: 'UTC',
    weekday: 'short',
    day: 'numeric',
    month: 'short',
  });
  const month = new Intl.DateTimeFormat(locale, { timeZone: 'UTC', month: 'long', year: 'numeric' });
  const isSmall = (value: string) => value !== '0' && compareDecimal(value.replace('-', ''), '1') < 0;
  const money = (value: string, code = currency) => {
    const [normal, fine] = moneyFor(code);
    return (isSmall(value) ? fine : normal).format(asNumeric(value));
  };
  const formatCredits = (value: string) => credits.format(asNumeric(value));
  /** Each shown with `format` after rounding together at `scale` (each on its own when they do not add up). */
  const parts = (
    total: string,
    values: string[],
    scale: number,
    format: (v: string) => string,
  ): ShownParts => {
    const shown = shownParts(total, values, scale) ?? { total, parts: values };
    return { total: format(shown.total), parts: shown.parts.map(format) };
  };
  return {
    locale,
    currency,
    timeZone,
    credits: formatCredits,
    money,
    moneyParts(total, values, code = currency) {
      // A part below one unit is shown to four decimals (a single call's cost): rounded with the
      // rest to the currency's digits it would show as nothing. Then the total and every part are
      // rounded together at four, so that those shown still add up to the total shown.
      const [normal, fine] = moneyFor(code);
      const chosen = isSmall(total) || values.some(isSmall) ? fine : normal;
      const scale = chosen.resolvedOptions().maximumFractionDigits ?? 2;
      return parts(total, values, scale, (v) => chosen.format(asNumeric(v)));
    },
    creditParts: (total, values) => parts(total, values, CREDIT_DIGITS, formatCredits),
    price: (value, code) =>
      new Intl.NumberFormat(locale, { style: 'currency', currency: code, maximumFractionDigits: 8 }).format(
        asNumeric(value),
      ),
    count: (value) => count.format(value),
    quantity: (value) => credits.format(asNumeric(value)),
    seconds: (ms) => `${tenths.format(ms / 1000)} s`,
    share: (value) => share.format(asNumeric(value)),
    // Shifted by an exponent, not divided, so the decimal string stays exact.
    percent: (value) => share.format(asNumeric(`${value}E-2`)),
    tokens: (value) => compact.format(value),
    fileSize(value) {
      // The largest unit that keeps the figure at 1 or more (a whole number of bytes below 1 kB);
      // 999,960 bytes are 1 MB, not the 1,000 kB a tenth rounds them to.
      let scaled = value;
      let unit = -1;
      while (unit < sizes.length - 1 && scaled >= (unit < 0 ? 1000 : 999.95)) {
        scaled /= 1000;
        unit += 1;
      }
      return unit < 0 ? bytes.format(value) : sizes[unit]!.format(scaled);
    },
    date: (iso) => date.format(new Date(iso)),
    dateTime: (iso) => dateTime.format(new Date(iso)),
    // Calendar dates are already in the org's zone: format them as plain dates.
    day: (isoDate) => day.format(new Date(`${isoDate}T12:00:00Z`)),
    month: (isoMonth) => month.format(new Date(`${isoMonth}-15T12:00:00Z`)),
  };
}

/** Display names of the providers usage events name most (the catalog's ids); others show as sent. */
const PROVIDER_NAMES: Record<string, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  google: 'Google',
  mistral: 'Mistral',
  aws: 'AWS Bedrock',
  azure: 'Microsoft Azure',
  deepseek: 'DeepSeek',
  'x-ai': 'xAI',
  groq: 'Groq',
  cohere: 'Cohere',
};

export const providerName = (id: string) => PROVIDER_NAMES[id] ?? id;

/** A model as the pages name it: "OpenAI · gpt-4o". */
export const modelName = (provider: string, model: string) => `${providerName(provider)} · ${model}`;

/** A `provider/model` reference (as conversations list their models), named as modelName does. */
export function modelRefName(ref: string): string {
  const at = ref.indexOf('/');
  return at < 0 ? ref : modelName(ref.slice(0, at), ref.slice(at + 1));
}
