// The moderator console (GET /moderate): plain JavaScript, no framework, no dependency.
//
// - The token lives in sessionStorage only (never a cookie, never a URL) and goes out as an
//   Authorization header; "Sign out" or a refused token forgets it.
// - Every decision, single or bulk, goes through POST /api/v1/moderation/decisions; Undo sends
//   each comment back to the status it had (a published comment back to pending: unpublished).
// - User data is only ever set as text (textContent, attribute values), never as HTML.
'use strict';
(() => {
  const API = '/api/v1/moderation';
  const TOKEN_KEY = 'moderator-token';
  const PAGE_SIZE = 20;
  const POLL_MS = 15000;
  const UNDO_MS = 8000;
  const REASONS = {
    profanity: 'Profanity',
    links: 'Links',
    blocked_term: 'Blocked term',
    hold_term: 'Held term',
    honeypot: 'Honeypot filled in',
    first_comment: 'First comment',
    pre_moderation: 'Pre-moderation',
  };
  const DONE = { approve: 'Approved', reject: 'Rejected', spam: 'Marked as spam', requeue: 'Back to pending' };
  // What sends a comment back to a status it had (Undo).
  const BACK_TO = { pending: 'requeue', approved: 'approve', rejected: 'reject', spam: 'spam' };
  const CHOICES = {
    auto_approve: ['trusted', 'all', 'none'],
    profanity_action: ['hold', 'spam', 'off'],
    link_action: ['hold', 'spam', 'off'],
    block_action: ['spam', 'hold'],
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child);
    return node;
  };

  const state = {
    comments: [], // the page shown
    current: -1, // index of the comment the keys act on
    selected: new Set(),
    cursors: [null], // cursor of each page seen so far; the last is the page shown
    next: null,
    total: 0,
    policy: null,
    undo: null, // {items, timer}
    poll: null,
  };

  // -- the API --------------------------------------------------------------------------------

  class Refused extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + token() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
    const doc = await response.json().catch(() => ({}));
    if (response.status === 401) {
      signOut('The token was refused: sign in again.');
      throw new Refused();
    }
    return { status: response.status, ok: response.ok, doc };
  }

  function problemText(doc) {
    return (doc && (doc.detail || doc.title)) || 'The service did not answer; try again.';
  }

  // -- signing in and out ---------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const input = $('token');
    const value = input.value.trim();
    $('token-error').textContent = '';
    if (!value) {
      showTokenError('Enter your moderator token.');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    input.value = '';
    try {
      const answer = await api('GET', '/queue?limit=1');
      if (!answer.ok) {
        sessionStorage.removeItem(TOKEN_KEY);
        showTokenError(problemText(answer.doc));
        return;
      }
    } catch (error) {
      if (!(error instanceof Refused)) showTokenError('The service did not answer; try again.');
      return;
    }
    await start();
    if (state.comments.length) markCurrent(0, true);
    else $('queue-title').focus();
  }

  function showTokenError(text) {
    const input = $('token');
    $('token-error').textContent = text;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.poll);
    state.poll = null;
    hideUndo();
    state.comments = [];
    state.selected.clear();
    $('comments').replaceChildren();
    $('console').hidden = true;
    $('sign-out').hidden = true;
    $('pending-count').hidden = true;
    $('sign-in').hidden = false;
    $('token-error').textContent = typeof message === 'string' ? message : '';
    $('token').focus();
  }

  async function start() {
    $('sign-in').hidden = true;
    $('token').removeAttribute('aria-invalid');
    $('console').hidden = false;
    $('sign-out').hidden = false;
    $('pending-count').hidden = false;
    showTab(location.hash.slice(1) || 'queue');
    await Promise.all([loadPolicy(), reload(), refreshCount()]);
    state.poll = setInterval(() => refreshCount().catch(() => {}), POLL_MS);
  }

  // -- the pending count ----------------------------------------------------------------------

  async function refreshCount() {
    const answer = await api('GET', '/queue?limit=1');
    if (answer.ok) {
      const n = answer.doc.total;
      const text = n === 1 ? '1 comment pending' : n + ' comments pending';
      if ($('pending-count').textContent !== text) $('pending-count').textContent = text;
    }
  }

  // -- the list -------------------------------------------------------------------------------

  function listQuery() {
    const params = new URLSearchParams({ status: $('filter-status').value, limit: PAGE_SIZE });
    const article = $('filter-article').value.trim();
    const reason = $('filter-reason').value;
    if (article) params.set('article_id', article);
    if (reason) params.set('reason', reason);
    const cursor = state.cursors[state.cursors.length - 1];
    if (cursor) params.set('cursor', cursor);
    return params;
  }

  async function reload() {
    const answer = await api('GET', '/comments?' + listQuery());
    if (!answer.ok) {
      showFilterError(answer.doc);
      return;
    }
    state.comments = answer.doc.comments;
    state.next = answer.doc.next_cursor;
    const ids = new Set(state.comments.map((c) => c.id));
    for (const id of state.selected) if (!ids.has(id)) state.selected.delete(id);
    state.total = answer.doc.total;
    render();
  }

  function showFilterError(doc) {
    const errors = (doc && doc.errors) || {};
    const text = Object.entries(errors)
      .map(([field, messages]) => field + ': ' + [].concat(messages).join(' '))
      .join('; ');
    $('filter-error').textContent = text || problemText(doc);
  }

  async function applyFilters(event) {
    event.preventDefault();
    $('filter-error').textContent = '';
    if ($('filter-article').value.trim() && $('filter-reason').value) {
      $('filter-error').textContent = 'Filter by an article or by a reason, one at a time.';
      return;
    }
    state.cursors = [null];
    state.current = -1;
    await reload();
    $('queue-title').focus(); // out of the field, so that the keys act on the list
  }

  function render() {
    const total = state.total;
    const list = $('comments');
    list.replaceChildren(...state.comments.map(renderComment));
    const status = $('filter-status').value;
    $('list-status').textContent =
      total === 0
        ? 'No ' + status + ' comments.'
        : 'Page ' + state.cursors.length + ': ' + state.comments.length + ' of ' + total + ' ' + status + ' comments, oldest first.';
    $('previous-page').disabled = state.cursors.length < 2;
    $('next-page').disabled = !state.next;
    if (state.current >= state.comments.length) state.current = state.comments.length - 1;
    updateSelection();
    if (state.current >= 0) markCurrent(state.current, list.contains(document.activeElement) || document.activeElement === document.body);
  }

  function renderComment(comment, index) {
    const item = el('li', { className: 'comment', tabIndex: -1 });
    item.dataset.id = comment.id;
    const heading = el('h3', { id: 'c-' + comment.id, className: 'who' }, comment.name);
    const select = el('input', { type: 'checkbox', id: 'select-' + comment.id, checked: state.selected.has(comment.id) });
    select.addEventListener('change', () => toggleSelected(comment.id, select.checked));
    const selectLabel = el('label', { htmlFor: select.id }, 'Select');
    selectLabel.append(el('span', { className: 'visually-hidden' }, ' the comment by ' + comment.name));
    const when = el('time', { dateTime: comment.created_at }, formatTime(comment.created_at));
    const meta = el(
      'dl',
      { className: 'meta' },
      el('dt', {}, 'Email'), el('dd', {}, comment.email || '(erased)'),
      el('dt', {}, 'Website'), el('dd', {}, comment.website || 'none'),
      el('dt', {}, 'Article'), el('dd', {}, comment.article_id),
      el('dt', {}, 'Sent'), el('dd', {}, when),
      el('dt', {}, 'Status'), el('dd', {}, comment.status),
    );
    const text = el('p', { className: 'text' }, comment.comment);
    const reasons = el('ul', { className: 'reasons', ariaLabel: 'Reasons' });
    for (const reason of comment.reasons) {
      const label = REASONS[reason.code] || reason.code.replace(/_/g, ' ');
      reasons.append(el('li', { className: 'reason reason-' + reason.action }, label + ': ' + reason.detail));
    }
    const actions = el('p', { className: 'actions' });
    const decide = (action, label, trust) => {
      const button = el('button', { type: 'button' }, label);
      button.setAttribute('aria-describedby', heading.id);
      button.addEventListener('click', () => decideComments([comment.id], action, trust));
      return button;
    };
    actions.append(decide('approve', 'Approve'), decide('reject', 'Reject'), decide('spam', 'Spam'));
    if (state.policy && state.policy.auto_approve === 'trusted' && comment.status !== 'approved') {
      actions.append(decide('approve', 'Approve and trust this author', true));
    }
    const historyButton = el('button', { type: 'button', ariaExpanded: 'false' }, 'History');
    historyButton.setAttribute('aria-controls', 'h-' + comment.id);
    historyButton.setAttribute('aria-describedby', heading.id);
    const history = el('ol', { id: 'h-' + comment.id, className: 'history', hidden: true });
    historyButton.addEventListener('click', () => toggleHistory(comment.id, historyButton, history));
    actions.append(historyButton);
    item.setAttribute('aria-labelledby', heading.id);
    item.addEventListener('focusin', () => { state.current = index; paintCurrent(); });
    item.append(el('div', { className: 'head' }, heading, el('span', { className: 'select' }, select, selectLabel)), meta, text);
    if (comment.reasons.length) item.append(reasons);
    item.append(actions, history);
    return item;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return isNaN(date) ? iso : new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
  }

  async function toggleHistory(id, button, list) {
    if (button.getAttribute('aria-expanded') === 'true') {
      button.setAttribute('aria-expanded', 'false');
      list.hidden = true;
      return;
    }
    const answer = await api('GET', '/comments/' + encodeURIComponent(id));
    const entries = answer.ok ? answer.doc.history : [];
    list.replaceChildren(
      ...entries.map((h) => el('li', {},
        el('time', { dateTime: h.at }, formatTime(h.at)),
        ' ' + (h.from ? h.from + ' → ' : '') + h.to + ' by ' + h.actor + (h.note ? ' (' + h.note + ')' : ''))),
    );
    if (!answer.ok) list.append(el('li', {}, problemText(answer.doc)));
    list.hidden = false;
    button.setAttribute('aria-expanded', 'true');
  }

  // -- the current comment and the selection --------------------------------------------------

  function items() {
    return Array.from($('comments').children);
  }

  function paintCurrent() {
    items().forEach((item, i) => item.classList.toggle('current', i === state.current));
  }

  function markCurrent(index, focus) {
    const all = items();
    if (!all.length) return;
    state.current = Math.max(0, Math.min(index, all.length - 1));
    paintCurrent();
    if (focus) all[state.current].focus();
  }

  function toggleSelected(id, on) {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    updateSelection();
  }

  function updateSelection() {
    const n = state.selected.size;
    $('selected-count').textContent = n + ' selected';
    for (const button of document.querySelectorAll('[data-bulk]')) button.disabled = n === 0;
    const all = $('select-all');
    all.checked = n > 0 && n === state.comments.length;
    all.indeterminate = n > 0 && n < state.comments.length;
    for (const comment of state.comments) {
      const box = $('select-' + comment.id);
      if (box) box.checked = state.selected.has(comment.id);
    }
  }

  function selectAll(on) {
    state.selected.clear();
    if (on) for (const comment of state.comments) state.selected.add(comment.id);
    updateSelection();
  }

  // -- decisions and undo ---------------------------------------------------------------------

  async function decideComments(ids, action, trust) {
    if (!ids.length) return;
    const note = $('note').value.trim();
    const before = new Map(state.comments.map((c) => [c.id, c.status]));
    const decisions = ids.map((id) => {
      const item = { comment_id: id, action };
      if (note) item.note = note;
      if (trust) item.trust_author = true;
      return item;
    });
    const answer = await api('POST', '/decisions', { decisions });
    if (!answer.ok) {
      announce(problemText(answer.doc));
      return;
    }
    const done = answer.doc.results.filter((r) => r.status === 200);
    const failed = answer.doc.results.filter((r) => r.status !== 200);
    const changed = done.filter((r) => before.get(r.comment_id) !== r.comment.status);
    $('note').value = '';
    for (const id of ids) state.selected.delete(id);
    const what = DONE[action] + (trust ? ' and trusted' : '');
    let text = what + ' ' + (done.length === 1 ? '1 comment' : done.length + ' comments') + '.';
    if (failed.length) text += ' ' + failed.length + ' failed: ' + failed.map((r) => problemText(r.problem)).join(' ');
    offerUndo(text, changed.map((r) => ({ comment_id: r.comment_id, action: BACK_TO[before.get(r.comment_id)] })));
    await Promise.all([reload(), refreshCount()]);
  }

  function offerUndo(text, back) {
    hideUndo();
    $('undo-text').textContent = text;
    $('undo-button').hidden = back.length === 0;
    $('undo').hidden = false;
    state.undo = { back, timer: setTimeout(hideUndo, UNDO_MS) };
  }

  function hideUndo() {
    if (state.undo) clearTimeout(state.undo.timer);
    state.undo = null;
    $('undo').hidden = true;
  }

  function announce(text) {
    hideUndo();
    $('undo-text').textContent = text;
    $('undo-button').hidden = true;
    $('undo').hidden = false;
    state.undo = { back: [], timer: setTimeout(hideUndo, UNDO_MS) };
  }

  async function undo() {
    if (!state.undo || !state.undo.back.length) return;
    const back = state.undo.back.map((item) => ({ ...item, note: 'undo' }));
    hideUndo();
    const answer = await api('POST', '/decisions', { decisions: back });
    const undone = answer.ok ? answer.doc.results.filter((r) => r.status === 200).length : 0;
    announce(answer.ok ? 'Undone: ' + (undone === 1 ? '1 comment' : undone + ' comments') + ' restored.' : problemText(answer.doc));
    await Promise.all([reload(), refreshCount()]);
  }

  // -- keys -----------------------------------------------------------------------------------

  function onKey(event) {
    if ($('console').hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($('keys').open) return;
    const target = event.target;
    if (target.closest && target.closest('input, textarea, select, [contenteditable]')) return;
    const comment = state.comments[state.current];
    const act = {
      j: () => markCurrent(state.current + 1, true),
      k: () => markCurrent(state.current - 1, true),
      a: () => comment && decideComments([comment.id], 'approve'),
      r: () => comment && decideComments([comment.id], 'reject'),
      s: () => comment && decideComments([comment.id], 'spam'),
      x: () => comment && toggleSelected(comment.id, !state.selected.has(comment.id)),
      u: () => undo(),
      '?': () => showKeys(),
    }[event.key];
    if (!act || $('queue').hidden) return;
    event.preventDefault();
    act();
  }

  function showKeys() {
    $('keys').showModal();
    $('close-keys').focus();
  }

  // -- tabs, articles, the policy -------------------------------------------------------------

  function showTab(name) {
    if (!['queue', 'articles', 'policy'].includes(name)) name = 'queue';
    for (const section of document.querySelectorAll('.tab')) section.hidden = section.id !== name;
    for (const link of document.querySelectorAll('[data-tab]')) {
      if (link.dataset.tab === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  async function setArticle(event) {
    event.preventDefault();
    const input = $('article-id');
    const id = input.value.trim();
    const open = event.submitter && event.submitter.dataset.open === 'true';
    if (!id) {
      $('article-result').textContent = 'Enter an article id.';
      input.setAttribute('aria-invalid', 'true');
      return;
    }
    const answer = await api('PUT', '/articles/' + encodeURIComponent(id), { open });
    input.toggleAttribute('aria-invalid', !answer.ok);
    $('article-result').textContent = answer.ok
      ? 'Commenting on ' + answer.doc.article_id + ' is ' + (answer.doc.open ? 'open.' : 'closed.')
      : problemText(answer.doc);
  }

  async function loadPolicy() {
    const answer = await api('GET', '/policy');
    if (!answer.ok) return;
    state.policy = answer.doc;
    renderPolicy(answer.doc);
  }

  function label(name) {
    const text = name.replace(/_/g, ' ');
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function renderPolicy(policy) {
    const fields = Object.entries(policy).map(([name, value]) => {
      const id = 'policy-' + name;
      const error = el('span', { id: id + '-error', className: 'error' });
      let input;
      if (typeof value === 'boolean') {
        input = el('input', { type: 'checkbox', checked: value });
      } else if (typeof value === 'number') {
        input = el('input', { type: 'number', value: String(value), min: '0', step: '1' });
      } else if (Array.isArray(value)) {
        input = el('textarea', { rows: 3, value: value.join('\n') });
      } else if (CHOICES[name]) {
        input = el('select', {}, ...CHOICES[name].map((v) => el('option', { value: v, selected: v === value }, v)));
      } else {
        input = el('input', { type: 'text', value: String(value) });
      }
      input.id = id;
      input.dataset.name = name;
      input.dataset.kind = Array.isArray(value) ? 'list' : typeof value;
      input.setAttribute('aria-describedby', error.id);
      const hint = Array.isArray(value) ? el('span', { className: 'hint' }, ' (one per line)') : '';
      return el('p', { className: 'field' }, el('label', { htmlFor: id }, label(name), hint), input, error);
    });
    $('policy-fields').replaceChildren(...fields);
  }

  async function savePolicy(event) {
    event.preventDefault();
    const body = {};
    for (const input of $('policy-fields').querySelectorAll('[data-name]')) {
      const kind = input.dataset.kind;
      body[input.dataset.name] =
        kind === 'boolean' ? input.checked
        : kind === 'number' ? (input.value === '' ? input.value : Number(input.value))
        : kind === 'list' ? input.value.split('\n').map((t) => t.trim()).filter(Boolean)
        : input.value;
    }
    for (const input of $('policy-fields').querySelectorAll('[data-name]')) {
      input.removeAttribute('aria-invalid');
      $(input.id + '-error').textContent = '';
    }
    const answer = await api('PUT', '/policy', body);
    if (answer.ok) {
      state.policy = answer.doc;
      renderPolicy(answer.doc);
      $('policy-result').textContent = 'Policy saved.';
      render();
      return;
    }
    const errors = answer.doc.errors || {};
    let first = null;
    for (const [name, messages] of Object.entries(errors)) {
      const input = $('policy-' + name);
      const text = typeof messages === 'object' && !Array.isArray(messages)
        ? Object.entries(messages).map(([i, m]) => 'line ' + (Number(i) + 1) + ': ' + [].concat(m).join(' ')).join('; ')
        : [].concat(messages).join(' ');
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        $(input.id + '-error').textContent = text;
        first = first || input;
      }
    }
    $('policy-result').textContent = 'Not saved: ' + problemText(answer.doc);
    if (first) first.focus();
  }

  // -- wiring ---------------------------------------------------------------------------------

  function wire() {
    for (const [code, text] of Object.entries(REASONS)) $('filter-reason').append(el('option', { value: code }, text));
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut());
    $('filters').addEventListener('submit', applyFilters);
    $('select-all').addEventListener('change', (e) => selectAll(e.target.checked));
    for (const button of document.querySelectorAll('[data-bulk]')) {
      button.addEventListener('click', () => decideComments(Array.from(state.selected), button.dataset.bulk));
    }
    $('previous-page').addEventListener('click', () => { state.cursors.pop(); state.current = 0; reload(); });
    $('next-page').addEventListener('click', () => { state.cursors.push(state.next); state.current = 0; reload(); });
    $('undo-button').addEventListener('click', undo);
    $('show-keys').addEventListener('click', showKeys);
    $('close-keys').addEventListener('click', () => $('keys').close());
    $('article-form').addEventListener('submit', setArticle);
    $('policy-form').addEventListener('submit', savePolicy);
    for (const link of document.querySelectorAll('[data-tab]')) {
      link.addEventListener('click', () => showTab(link.dataset.tab));
    }
    window.addEventListener('hashchange', () => showTab(location.hash.slice(1)));
    document.addEventListener('keydown', onKey);
    window.addEventListener('unhandledrejection', (event) => {
      if (event.reason instanceof Refused) event.preventDefault();
    });
  }

  wire();
  if (token()) start().catch(() => {});
  else signOut();
})();
