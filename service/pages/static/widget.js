/* The comment widget: <comment-thread> and <comment-count>, no framework, no dependency.
 *
 * Served as /embed.js, minified, with its stylesheet and strings filled in by the service
 * (service/pages/assets.py replaces the two placeholders below). Rules it keeps:
 * - user data is only ever set as text (textContent, attributes set one by one); no innerHTML;
 * - no style attribute, no <style> element, no eval: one constructable stylesheet adopted by
 *   every shadow root, so a host page's strict CSP has nothing to block;
 * - nothing is fetched before a thread comes near the viewport; all counts on a page are one
 *   request;
 * - what the browser keeps of a pending comment is its id, article, name, text and website,
 *   never the email; of the reader's own comments, each id with its edit token until the edit
 *   window ends (then both are dropped);
 * - each post attempt carries an Idempotency-Key, the same when that attempt is sent again
 *   after a network failure or a 503, so a retry never stores the comment twice.
 */
(() => {
  'use strict';
  const CSS = "__CSS__";
  const STRINGS = {"__STRINGS__": 0};
  const MAX_DEPTH = 4;          // deeper replies are shown at this depth's indentation
  const PENDING_DAYS = 7;       // a pending comment is forgotten after this many days
  const PENDING_KEY = 'comment-widget:pending';
  const KEY_KEY = 'comment-widget:commenter-key';
  const MINE_KEY = 'comment-widget:mine'; // [{id, token, until, base}]: Edit and Delete until `until`
  const FIELDS = ['name', 'email', 'website', 'comment'];
  const EDIT_FIELDS = ['name', 'website', 'comment'];
  const REL = 'nofollow ugc noopener';
  const URL_RE = /\bhttps?:\/\/[^\s<>"]+/g;

  const script = document.currentScript || document.querySelector('script[src*="embed.js"]');
  const BASE = new URL('.', script ? script.src : location.href);
  const api = (path) => new URL('api/v1/' + path, BASE).href;
  let sheet = null;

  function styles() {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    return sheet;
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function language(node) {
    const wanted = [node.getAttribute('lang'), document.documentElement.lang,
      ...(navigator.languages || [navigator.language])];
    for (const tag of wanted) {
      const primary = (tag || '').toLowerCase().split('-')[0];
      if (STRINGS[primary]) return primary;
    }
    return 'en';
  }

  // The strings for a node, each layer over the last: English, the page's English overrides,
  // the node's language, the page's overrides for it (window.CommentWidgetStrings, set by a
  // script of the site's that runs before this one), the element's own (a JSON `strings`
  // attribute).
  function strings(node, lang) {
    let own = {};
    try { own = JSON.parse(node.getAttribute('strings') || '{}'); } catch (e) {
      console.error('comment-thread: the strings attribute is not JSON', e);
    }
    const site = window.CommentWidgetStrings || {};
    return Object.assign({}, STRINGS.en, site.en, STRINGS[lang], site[lang], own);
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
  }

  function isWebUrl(value) {
    try { return ['http:', 'https:'].includes(new URL(value).protocol); } catch (e) { return false; }
  }

  function link(href, text) {
    return el('a', {href, rel: REL, text});
  }

  // A URL found in prose without the punctuation after it; a closing bracket stays when it
  // closes one inside the URL (https://en.wikipedia.org/wiki/Foo_(bar)).
  function trimUrl(url) {
    const count = (c) => url.split(c).length - 1;
    while (/[.,;:!?)\]'’]$/.test(url)) {
      const last = url.slice(-1);
      if ((last === ')' && count('(') >= count(')')) || (last === ']' && count('[') >= count(']'))) break;
      url = url.slice(0, -1);
    }
    return url;
  }

  // Comment text as text: paragraphs at blank lines, <br> at line breaks, http(s) links.
  function body(text) {
    const box = el('div', {class: 'body', part: 'body'});
    for (const para of text.split(/\n\s*\n/)) {
      const p = el('p');
      para.split('\n').forEach((line, i) => {
        if (i) p.append(el('br'));
        let last = 0;
        for (const match of line.matchAll(URL_RE)) {
          const url = trimUrl(match[0]);
          if (!isWebUrl(url)) continue;
          p.append(line.slice(last, match.index), link(url, url));
          last = match.index + url.length;
        }
        p.append(line.slice(last));
      });
      box.append(p);
    }
    return box;
  }

  function readPending() {
    try {
      const cutoff = Date.now() - PENDING_DAYS * 864e5;
      const all = JSON.parse(localStorage.getItem(PENDING_KEY) || '[]');
      return all.filter((c) => c && c.id && Date.parse(c.created_at) > cutoff);
    } catch (e) { return []; }
  }

  function writePending(list) {
    try {
      if (list.length) localStorage.setItem(PENDING_KEY, JSON.stringify(list));
      else localStorage.removeItem(PENDING_KEY);
    } catch (e) { /* storage off: the comment is still shown until the page is left */ }
  }

  // The reader's own comments still in their edit window (the expired ones are dropped).
  function readMine() {
    let all = [];
    try { all = JSON.parse(localStorage.getItem(MINE_KEY) || '[]'); } catch (e) { /* none */ }
    const open = all.filter((m) => m && m.id && m.token && Date.parse(m.until) > Date.now());
    if (open.length !== all.length) writeMine(open);
    return open;
  }

  function writeMine(list) {
    try {
      if (list.length) localStorage.setItem(MINE_KEY, JSON.stringify(list));
      else localStorage.removeItem(MINE_KEY);
    } catch (e) { /* storage off: editable until the page is left */ }
  }

  const dropMine = (id) => writeMine(readMine().filter((m) => m.id !== id));

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http have no randomUUID; getRandomValues works everywhere.
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function storage(op, key, value) {
    try { return op === 'get' ? localStorage.getItem(key) : localStorage.setItem(key, value); } catch (e) { return null; }
  }

  function unreachable(what, error) {
    console.error(`${what}: could not reach the comment service at ${BASE.origin} (${error}). ` +
      `Either it is down, or this page's origin ${location.origin} is not in its ` +
      `ALLOWED_ORIGINS setting: add it there to show comments on this site.`);
  }

  class CommentThread extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      const root = this.attachShadow({mode: 'open'});
      root.adoptedStyleSheets = [styles()];
      this.lang_ = language(this);
      this.t = strings(this, this.lang_);
      this.article = this.getAttribute('article') || '';
      this.pageSize = Math.min(200, Math.max(1, parseInt(this.getAttribute('page-size'), 10) || 50));
      // Dates in the reader's own variant of the thread's language (en-GB, de-AT...).
      const reader = (navigator.languages || []).find((l) => l.split('-')[0].toLowerCase() === this.lang_);
      this.dates = new Intl.DateTimeFormat(reader || this.lang_, {dateStyle: 'medium', timeStyle: 'short'});
      this.items = new Map();
      this.total = 0;
      this.heading = el('h2', {part: 'heading', id: 'heading', text: this.t.thread});
      this.status = el('p', {class: 'status', part: 'status', role: 'status', 'aria-live': 'polite',
        text: this.t.loading});
      this.list = el('ol', {class: 'list', part: 'list'});
      this.more = el('button', {type: 'button', class: 'more', part: 'load-more', hidden: true,
        text: this.t.more, onclick: () => this.load(this.cursor)});
      this.form = this.buildForm();
      root.append(el('section', {part: 'thread', 'aria-labelledby': 'heading', lang: this.lang_},
        this.heading, this.status, this.list, this.more, this.formBox));
      if ('IntersectionObserver' in window) {
        const observer = new IntersectionObserver((entries) => {
          if (entries.some((e) => e.isIntersecting)) {
            observer.disconnect();
            this.load(null);
          }
        }, {rootMargin: '600px'});
        observer.observe(this);
      } else {
        this.load(null);
      }
    }

    field(name, label, attrs, control) {
      const id = 'f-' + name;
      const input = el(control || 'input', Object.assign({id, name, 'aria-describedby': 'e-' + name}, attrs));
      const mark = attrs.required ? el('span', {'aria-hidden': 'true', text: ' *'}) : null;
      const error = el('p', {class: 'error', id: 'e-' + name, part: 'field-error'});
      this.inputs[name] = input;
      this.errors[name] = error;
      return el('div', {class: 'field'}, el('label', {for: id}, label, mark), input, error);
    }

    buildForm() {
      const t = this.t;
      this.inputs = {};
      this.errors = {};
      this.parentId = null;
      this.replying = el('p', {class: 'replying', hidden: true});
      this.submit = el('button', {type: 'submit', class: 'primary', part: 'submit', text: t.post});
      this.formStatus = el('p', {class: 'status', part: 'form-status', role: 'status', 'aria-live': 'polite'});
      const form = el('form', {part: 'form', novalidate: true, 'aria-labelledby': 'leave',
        onsubmit: (event) => { event.preventDefault(); this.post(); }},
      el('h3', {id: 'leave', text: t.leave}),
      this.replying,
      el('p', {class: 'notice', part: 'notice', id: 'notice', text: t.notice}),
      this.field('name', t.name, {required: true, 'aria-required': 'true', autocomplete: 'name', maxlength: 100}),
      this.field('email', t.email, {required: true, 'aria-required': 'true', type: 'email', autocomplete: 'email', maxlength: 254}),
      this.field('website', t.website, {type: 'url', autocomplete: 'url', maxlength: 500}),
      this.field('comment', t.comment, {required: true, 'aria-required': 'true', maxlength: 5000, rows: 5}, 'textarea'),
      // The honeypot: off screen, hidden from assistive technology, out of the tab order.
      el('div', {class: 'trap', 'aria-hidden': 'true'},
        el('label', {for: 'f-fax', text: 'Fax'}),
        el('input', {id: 'f-fax', name: 'fax', tabindex: '-1', autocomplete: 'off'})),
      this.formStatus,
      this.submit);
      this.formBox = el('div', {part: 'form-box'}, form);
      return form;
    }

    async load(cursor) {
      this.more.disabled = true;
      let page;
      try {
        const params = new URLSearchParams({limit: this.pageSize});
        if (cursor) params.set('cursor', cursor);
        // An author with a comment pending here revalidates (a cheap 304 when nothing
        // changed) to see it published at once; everyone else takes the cached page.
        const mine = readPending().some((c) => c.article_id === this.article);
        const response = await fetch(api(`articles/${encodeURIComponent(this.article)}/comments?${params}`),
          mine ? {cache: 'no-cache'} : {});
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        page = await response.json();
      } catch (error) {
        if (error instanceof TypeError) unreachable('comment-thread', error);
        else console.error('comment-thread: loading comments failed', error);
        this.say(this.status, this.t.loadFailed, true);
        this.more.disabled = false;
        return;
      }
      for (const comment of page.comments) this.add(comment, false);
      this.total = page.total;
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
      this.more.disabled = false;
      if (!cursor) this.showPending();
      this.updateHeading();
    }

    updateHeading() {
      const forms = this.t.comments;
      const rule = new Intl.PluralRules(this.lang_).select(this.total);
      this.heading.textContent = this.total ? fill(forms[rule] || forms.other, {n: this.total}) : this.t.thread;
      this.say(this.status, this.total || this.list.children.length ? '' : this.t.none);
    }

    // A comment's <li>, under its parent's replies when the parent is shown.
    add(comment, pending) {
      if (this.items.has(comment.id)) return this.items.get(comment.id);
      const parent = comment.parent_id && this.items.get(comment.parent_id);
      const depth = parent ? Math.min(MAX_DEPTH, Number(parent.dataset.depth) + 1) : 0;
      const replies = el('ol', {class: 'replies', part: 'replies'});
      const item = el('li', {id: 'c-' + comment.id, 'data-depth': depth}, replies);
      item.prepend(this.box(comment, pending, item));
      this.items.set(comment.id, item);
      // At the depth cap a reply joins its parent's list instead of indenting further.
      const into = !parent ? this.list
        : depth >= MAX_DEPTH && Number(parent.dataset.depth) >= MAX_DEPTH ? parent.parentElement
          : parent.querySelector(':scope > .replies');
      into.append(item);
      return item;
    }

    // A comment's box (and its item's classes): Edit and Delete on the reader's own while its
    // edit window is open, gone when it ends.
    box(comment, pending, item) {
      const t = this.t;
      const deep = Number(item.dataset.depth) >= MAX_DEPTH;
      item.className = 'comment' + (pending ? ' pending' : '') + (deep ? ' deep' : '');
      item.setAttribute('part', pending ? 'comment pending' : 'comment');
      const name = comment.website && isWebUrl(comment.website)
        ? link(comment.website, comment.name) : document.createTextNode(comment.name);
      const date = new Date(comment.created_at);
      const own = readMine().find((m) => m.id === comment.id && m.base === BASE.href);
      let actions = null;
      if (own) {
        actions = el('span', {class: 'own', part: 'own-actions'},
          el('button', {type: 'button', class: 'reply', part: 'edit-button', text: t.edit,
            onclick: () => this.edit(comment, item, own)}),
          el('button', {type: 'button', class: 'reply', part: 'delete-button', text: t.remove,
            onclick: () => this.remove(comment, item, own)}));
        const left = Date.parse(own.until) - Date.now();
        if (left < 2 ** 31) setTimeout(() => actions.remove(), left);
      }
      return el('article', {class: 'box', 'aria-label': comment.name},
        el('p', {class: 'meta'},
          el('span', {class: 'author', part: 'author'}, name),
          el('time', {datetime: comment.created_at, part: 'date',
            text: isNaN(date) ? comment.created_at : this.dates.format(date)})),
        body(comment.comment),
        pending ? el('p', {class: 'note', part: 'pending-note',
          text: comment.edited ? t.editPending : t.pending}) : null,
        el('button', {type: 'button', class: 'reply', part: 'reply-button', text: t.reply,
          'aria-label': `${t.reply}: ${comment.name}`,
          onclick: () => this.replyTo(comment, item)}),
        actions);
    }

    // The author's own request on their comment, with its edit token: {status, doc}, or null
    // when the service could not be reached.
    async ownRequest(method, own, payload) {
      const headers = {'Edit-Token': own.token};
      if (payload) headers['Content-Type'] = 'application/json';
      try {
        const response = await fetch(api('comments/' + encodeURIComponent(own.id)),
          {method, headers, body: payload ? JSON.stringify(payload) : undefined});
        return {status: response.status, doc: await response.json().catch(() => ({}))};
      } catch (error) {
        unreachable('comment-thread', error);
        return null;
      }
    }

    // An answer to an edit or a deletion that is no success, said in `node`: after the window
    // (403) when it ended, and the buttons go with the token.
    refused(answer, node, comment, item) {
      const t = this.t;
      if (answer && answer.status === 403) {
        dropMine(comment.id);
        const ends = new Date(answer.doc.window_ends_at);
        const box = this.box(comment, item.classList.contains('pending'), item);
        item.querySelector(':scope > .box, :scope > form').replaceWith(box);
        node = el('p', {class: 'status bad', part: 'edit-status', role: 'status'});
        box.append(node);
        this.say(node, isNaN(ends) ? t.editClosed : fill(t.editEnded, {when: this.dates.format(ends)}), true);
      } else {
        this.say(node, answer && answer.status === 503 ? t.unavailable : t.editFailed, true);
      }
    }

    edit(comment, item, own) {
      const t = this.t;
      const prefix = 'x' + comment.id + '-';
      const inputs = {};
      const errors = {};
      const field = (name, label, attrs, control) => {
        const id = prefix + name;
        inputs[name] = el(control || 'input', Object.assign({id, name, 'aria-describedby': 'e' + id}, attrs));
        errors[name] = el('p', {class: 'error', id: 'e' + id, part: 'field-error'});
        return el('div', {class: 'field'}, el('label', {for: id, text: label}), inputs[name], errors[name]);
      };
      const status = el('p', {class: 'status', part: 'edit-status', role: 'status', 'aria-live': 'polite'});
      const close = () => {
        form.replaceWith(this.box(comment, item.classList.contains('pending'), item));
        item.querySelector('[part=edit-button]').focus();
      };
      const form = el('form', {class: 'box edit', part: 'edit-form', novalidate: true,
        'aria-label': fill(t.editing, {name: comment.name}),
        onsubmit: (event) => { event.preventDefault(); this.saveEdit(comment, item, own, {inputs, errors, status}); }},
      field('name', t.name, {required: true, 'aria-required': 'true', autocomplete: 'name', maxlength: 100}),
      field('website', t.website, {type: 'url', autocomplete: 'url', maxlength: 500}),
      field('comment', t.comment, {required: true, 'aria-required': 'true', maxlength: 5000, rows: 4}, 'textarea'),
      status,
      el('button', {type: 'submit', class: 'primary', part: 'save-edit', text: t.save}), ' ',
      el('button', {type: 'button', part: 'cancel-edit', text: t.cancelEdit, onclick: close}));
      inputs.name.value = comment.name;
      inputs.website.value = comment.website || '';
      inputs.comment.value = comment.comment;
      item.querySelector(':scope > .box').replaceWith(form);
      inputs.comment.focus();
    }

    async saveEdit(comment, item, own, form) {
      const t = this.t;
      const {inputs, status} = form;
      const values = {};
      for (const name of EDIT_FIELDS) values[name] = inputs[name].value;
      this.clearErrors(form, EDIT_FIELDS);
      const blank = {};
      for (const name of ['name', 'comment']) if (!values[name].trim()) blank[name] = [t.required];
      if (Object.keys(blank).length) return this.showErrors(blank, form, EDIT_FIELDS);
      const answer = await this.ownRequest('PATCH', own, {name: values.name, comment: values.comment,
        website: values.website.trim() || null});
      if (answer && answer.status === 200) {
        const doc = answer.doc;
        const wasPending = item.classList.contains('pending');
        const pending = doc.status !== 'approved';
        const edited = Object.assign({}, comment, {name: doc.name, comment: doc.comment,
          website: doc.website, edited: true});
        // A published comment edited into something the policy holds left the thread.
        if (!wasPending && pending) this.total -= 1;
        const others = readPending().filter((c) => c.id !== comment.id);
        writePending(pending ? others.concat([Object.assign({article_id: this.article, base: BASE.href}, edited)]) : others);
        const box = this.box(edited, pending, item);
        item.querySelector(':scope > form').replaceWith(box);
        this.updateHeading();
        const note = el('p', {class: 'status', part: 'edit-status', role: 'status'});
        box.append(note);
        this.say(note, pending ? t.editPending : t.edited);
        box.querySelector('[part=edit-button]').focus();
      } else if (answer && answer.status === 422 && answer.doc.errors) {
        this.showErrors(answer.doc.errors, form, EDIT_FIELDS);
      } else {
        this.refused(answer, status, comment, item);
      }
    }

    async remove(comment, item, own) {
      const t = this.t;
      if (!window.confirm(t.confirmRemove)) return;
      const answer = await this.ownRequest('DELETE', own);
      if (answer && answer.status === 204) {
        dropMine(comment.id);
        writePending(readPending().filter((c) => c.id !== comment.id));
        if (!item.classList.contains('pending')) this.total -= 1;
        this.items.delete(comment.id);
        item.remove();
        this.updateHeading();
        this.say(this.status, t.removed);
      } else {
        const node = el('p', {class: 'status', part: 'edit-status', role: 'status'});
        item.querySelector(':scope > .box').append(node);
        this.refused(answer, node, comment, item);
      }
    }

    showPending() {
      // Published ones are dropped, and (by readPending) those older than PENDING_DAYS.
      const still = readPending().filter((c) => !this.items.has(c.id));
      writePending(still);
      for (const comment of still.filter((c) => c.article_id === this.article && c.base === BASE.href)) {
        this.add(comment, true);
      }
    }

    replyTo(comment, item) {
      this.parentId = comment.id;
      this.replying.replaceChildren(
        el('span', {text: fill(this.t.replyTo, {name: comment.name})}),
        el('button', {type: 'button', class: 'reply', part: 'cancel-reply', text: this.t.cancel,
          onclick: () => this.cancelReply()}));
      this.replying.hidden = false;
      item.querySelector(':scope > .box').after(this.formBox);
      this.inputs.comment.focus();
    }

    cancelReply() {
      this.parentId = null;
      this.replying.hidden = true;
      this.replying.replaceChildren();
      this.shadowRoot.querySelector('section').append(this.formBox);
      this.inputs.name.focus();
    }

    say(node, text, bad) {
      node.textContent = text;
      node.classList.toggle('bad', Boolean(bad));
    }

    // The post form's fields by default; an edit form's ({inputs, errors, status}) when given.
    clearErrors(form, fields) {
      const {inputs, errors, status} = form || this.main();
      for (const name of fields || FIELDS) {
        inputs[name].removeAttribute('aria-invalid');
        errors[name].textContent = '';
      }
      this.say(status, '');
    }

    main() {
      return {inputs: this.inputs, errors: this.errors, status: this.formStatus};
    }

    async post() {
      const t = this.t;
      const values = {};
      for (const name of FIELDS) values[name] = this.inputs[name].value;
      const payload = Object.assign({}, values, {fax: this.form.elements.fax.value});
      if (!payload.website.trim()) delete payload.website;
      if (this.parentId) payload.parent_id = this.parentId;
      const key = storage('get', KEY_KEY);
      if (key) payload.commenter_key = key;
      this.clearErrors();
      // Blank required fields are told at once, in the reader's language, without a request.
      const blank = {};
      for (const name of ['name', 'email', 'comment']) if (!values[name].trim()) blank[name] = [t.required];
      if (Object.keys(blank).length) return this.showErrors(blank);
      this.submit.disabled = true;
      this.submit.textContent = t.posting;
      // One key per attempt: sending the same comment again (after a network failure, a 503)
      // repeats the attempt, and the service answers it once; another comment is a new one.
      const sent = JSON.stringify(payload);
      if (!this.attempt || this.attempt.body !== sent) this.attempt = {body: sent, key: newKey()};
      let response;
      let answer = {};
      try {
        response = await fetch(api(`articles/${encodeURIComponent(this.article)}/comments`), {
          method: 'POST', headers: {'Content-Type': 'application/json', 'Idempotency-Key': this.attempt.key},
          body: sent});
        answer = await response.json().catch(() => ({}));
      } catch (error) {
        unreachable('comment-thread', error);
        this.say(this.formStatus, t.failed, true);
        return this.ready();
      }
      this.ready();
      const status = response.status;
      if (status === 201 || status === 202) {
        this.attempt = null;
        if (answer.commenter_key) storage('set', KEY_KEY, answer.commenter_key);
        if (answer.edit_token && Date.parse(answer.edit_until) > Date.now()) {
          writeMine(readMine().filter((m) => m.id !== answer.id).concat([{id: answer.id,
            token: answer.edit_token, until: answer.edit_until, base: BASE.href}]));
        }
        const comment = {id: answer.id, article_id: this.article, base: BASE.href,
          parent_id: this.parentId, name: values.name.trim(), comment: values.comment,
          website: payload.website || null, created_at: answer.created_at};
        const pending = status === 202;
        if (pending) writePending(readPending().concat([comment]));
        else this.total += 1;
        const item = this.add(comment, pending);
        this.inputs.comment.value = '';
        if (this.parentId) this.cancelReply();
        this.updateHeading();
        this.say(this.formStatus, pending ? t.pending : t.posted);
        item.scrollIntoView({block: 'nearest'});
      } else if (status === 422 && answer.errors) {
        this.showErrors(answer.errors);
      } else if (status === 429) {
        const seconds = Math.max(1, parseInt(response.headers.get('Retry-After'), 10) || 60);
        const when = new Intl.RelativeTimeFormat(this.lang_, {numeric: 'always'}).format(seconds, 'second');
        this.say(this.formStatus, fill(t.wait, {when}), true);
      } else if (status === 403) {
        this.formBox.replaceChildren(el('p', {class: 'status', part: 'closed', role: 'status', text: t.closed}));
      } else if (status === 503) {
        this.say(this.formStatus, t.unavailable, true);
      } else {
        console.error('comment-thread: the service answered', status, answer);
        this.say(this.formStatus, t.failed, true);
      }
    }

    // Field errors by their fields (aria-invalid, described by the message), the rest in the
    // form's status line; the first invalid field gets the focus.
    showErrors(errors, form, fields) {
      const {inputs, errors: nodes, status} = form || this.main();
      const other = [];
      for (const [name, messages] of Object.entries(errors)) {
        const text = [].concat(messages).map((m) => (
          m === 'Missing data for required field.' ? this.t.required : m)).join(' ');
        if (inputs[name]) {
          inputs[name].setAttribute('aria-invalid', 'true');
          nodes[name].textContent = text;
        } else {
          other.push(text);
        }
      }
      this.say(status, [this.t.invalid].concat(other).join(' '), true);
      const first = (fields || FIELDS).find((f) => errors[f]);
      if (first) inputs[first].focus();
    }

    ready() {
      this.submit.disabled = false;
      this.submit.textContent = this.t.post;
    }
  }
  CommentThread.strings = STRINGS;

  // Every <comment-count> connected in one task is answered by one request (GET, cacheable;
  // POST for long lists).
  const waiting = new Map();
  let scheduled = false;

  class CommentCount extends HTMLElement {
    connectedCallback() {
      const article = this.getAttribute('article');
      if (!article) return;
      if (!waiting.has(article)) waiting.set(article, []);
      waiting.get(article).push(this);
      if (!scheduled) {
        scheduled = true;
        setTimeout(flushCounts, 0);
      }
    }
  }

  async function flushCounts() {
    scheduled = false;
    const batch = new Map(waiting);
    waiting.clear();
    const ids = [...batch.keys()];
    for (let start = 0; start < ids.length; start += 100) {
      const chunk = ids.slice(start, start + 100);
      const query = new URLSearchParams(chunk.map((id) => ['article_id', id])).toString();
      const long = query.length > 1500;
      let counts;
      try {
        const response = await fetch(long ? api('comment-counts') : api('comment-counts?' + query),
          long ? {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({article_id: chunk})} : undefined);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        counts = (await response.json()).counts;
      } catch (error) {
        if (error instanceof TypeError) unreachable('comment-count', error);
        else console.error('comment-count: loading counts failed', error);
        continue;
      }
      for (const id of chunk) {
        for (const node of batch.get(id)) {
          node.textContent = new Intl.NumberFormat(language(node)).format(counts[id] || 0);
        }
      }
    }
  }

  if (!customElements.get('comment-thread')) customElements.define('comment-thread', CommentThread);
  if (!customElements.get('comment-count')) customElements.define('comment-count', CommentCount);
})();
