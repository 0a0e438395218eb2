/**
 * <tally-usage-bar token="tally_em_..."> for a host app's pages: frames Tally's compact usage bar
 * (same-origin with the API, so no CORS and no key on the host page) and re-emits its buttons as
 * `tally-upgrade` / `tally-referral` events. The balance follows usage live (pushed by Tally).
 * Attributes: token (an embed token), locale (e.g. de-DE),
 * upgrade-url and referral-url (followed unless a listener calls preventDefault). Theme with the
 * --tally-* CSS variables on the element.
 */
const THEME_VARIABLES = [
  '--tally-accent',
  '--tally-bg',
  '--tally-surface',
  '--tally-text',
  '--tally-muted',
  '--tally-font',
];
const TALLY_ORIGIN = new URL(import.meta.url).origin;

class TallyUsageBar extends HTMLElement {
  static observedAttributes = ['token', 'locale'];
  private frame: HTMLIFrameElement | null = null;

  private readonly onMessage = (event: MessageEvent) => {
    if (event.origin !== TALLY_ORIGIN || event.source !== this.frame?.contentWindow) return;
    const kind =
      event.data?.type === 'tally:upgrade'
        ? 'upgrade'
        : event.data?.type === 'tally:referral'
          ? 'referral'
          : null;
    if (!kind) return;
    const proceed = this.dispatchEvent(
      new CustomEvent(`tally-${kind}`, { bubbles: true, composed: true, cancelable: true }),
    );
    const target = this.getAttribute(`${kind}-url`);
    if (proceed && target) location.assign(target);
  };

  connectedCallback() {
    const root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
    if (!this.frame) {
      const style = document.createElement('style');
      style.textContent =
        ':host{display:block;height:var(--tally-bar-height,48px)}iframe{border:0;width:100%;height:100%;display:block}';
      this.frame = document.createElement('iframe');
      this.frame.title = 'Credit usage';
      root.append(style, this.frame);
    }
    addEventListener('message', this.onMessage);
    this.load();
  }

  disconnectedCallback() {
    removeEventListener('message', this.onMessage);
  }

  attributeChangedCallback() {
    if (this.frame) this.load();
  }

  private load() {
    const token = this.getAttribute('token');
    if (!token || !this.frame) return;
    const fragment = new URLSearchParams({ token });
    const locale = this.getAttribute('locale');
    if (locale) fragment.set('locale', locale);
    const computed = getComputedStyle(this);
    for (const name of THEME_VARIABLES) {
      const value = computed.getPropertyValue(name).trim();
      if (value) fragment.set(name, value);
    }
    this.frame.src = `${TALLY_ORIGIN}/embed/bar#${fragment}`;
  }
}

if (!customElements.get('tally-usage-bar')) customElements.define('tally-usage-bar', TallyUsageBar);
