// The moderator console (GET /moderate): plain JavaScript, no framework, no dependency.
//
// - The token lives in sessionStorage only (never a cookie, never a URL) and goes out as an
//   Authorization header; "Sign out" or a refused token forgets it.
// - A decision names the version of the comment the moderator read (If-Match on the single
//   routes, `version` per item of POST /api/v1/moderation/decisions): a comment that moved on
//   meanwhile is left alone (412) and shown as it is now, with who or what moved it. Undo sends
//   each comment back to the status it had (a published comment back to pending: unpublished).
// - The focused comment is claimed (POST .../claim) so that two moderators do not review it at
//   once; the claim moves with the focus, a decision releases it; others' claims are shown.
// - User data is only ever set as text (textContent, attribute values), never as HTML.
'use strict';
(() => {
  const API = '/api/v1/moderation';
  const TOKEN_KEY = 'moderator-token';
  const NAME_KEY = 'moderator-name'; // this token's name, as the claims answer it
  const CLAIM_DELAY_MS = 300; // the focus rests this long on a comment before it is claimed
  const CLAIM_RENEW_MS = 120000; // claims last CLAIM_SECONDS (300 by default): renewed before
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
  const REPORTS = { spam: 'Spam', abuse: 'Abuse', off_topic: 'Off topic', privacy: 'Privacy', other: 'Other' };
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
    listAsked: 0, // the latest list request: an older answer arriving later is dropped
    current: -1, // index of the comment the keys act on
    selected: new Set(),
    cursors: [null], // cursor of each page seen so far; the last is the page shown
    next: null,
    total: 0,
    policy: null,
    undo: null, // {items, timer}
    poll: null,
    view: 'list', // 'list' (by status) or 'reported' (the Reported queue)
    stale: new Map(), // id -> {comment, index, text}: a decision refused with 412, shown as it is now
    claimed: null, // id of the comment this moderator claimed, and when
    claimedAt: 0,
    claimTimer: null,
  };

  // -- the API --------------------------------------------------------------------------------

  class Refused extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(method, path, body, extra) {
    const headers = { Authorization: 'Bearer ' + token(), ...(extra || {}) };
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
    if (state.claimed && token()) api('DELETE', claimPath(state.claimed)).catch(() => {});
    state.claimed = null;
    clearTimeout(state.claimTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(NAME_KEY);
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
    state.poll = setInterval(() => {
      refreshCount().catch(() => {});
      if (state.claimed && Date.now() - state.claimedAt > CLAIM_RENEW_MS) claim(state.claimed).catch(() => {});
    }, POLL_MS);
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
    const params = new URLSearchParams({ limit: PAGE_SIZE });
    if (state.view === 'reported') {
      params.set('view', 'reported');
    } else {
      params.set('status', $('filter-status').value);
      const article = $('filter-article').value.trim();
      const reason = $('filter-reason').value;
      if (article) params.set('article_id', article);
      if (reason) params.set('reason', reason);
    }
    if ($('filter-unclaimed').checked) params.set('unclaimed', 'true');
    const cursor = state.cursors[state.cursors.length - 1];
    if (cursor) params.set('cursor', cursor);
    return params;
  }

  async function reload() {
    const asked = ++state.listAsked;
    const answer = await api('GET', (state.view === 'reported' ? '/queue?' : '/comments?') + listQuery());
    if (asked !== state.listAsked) return; // a newer list (other filters, page) was asked since
    if (!answer.ok) {
      showFilterError(answer.doc);
      return;
    }
    state.comments = answer.doc.comments;
    // A comment whose decision was refused stays in view as it is now (it may have left this
    // list), until the next decision on it or another list.
    for (const [id, entry] of state.stale) {
      const at = state.comments.findIndex((c) => c.id === id);
      if (at >= 0) state.comments[at] = { ...entry.comment, ...state.comments[at] };
      else state.comments.splice(Math.min(entry.index, state.comments.length), 0, entry.comment);
    }
    state.next = answer.doc.next_cursor;
    const ids = new Set(state.comments.map((c) => c.id));
    for (const id of state.selected) if (!ids.has(id)) state.selected.delete(id);
    state.total = answer.doc.total;
    render();
    if (state.view === 'reported') await loadReportNotes();
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
    if (state.view !== 'reported' && $('filter-article').value.trim() && $('filter-reason').value) {
      $('filter-error').textContent = 'Filter by an article or by a reason, one at a time.';
      return;
    }
    state.cursors = [null];
    state.current = -1;
    state.stale.clear();
    await reload();
    $('queue-title').focus(); // out of the field, so that the keys act on the list
  }

  function render() {
    const total = state.total;
    const list = $('comments');
    list.replaceChildren(...state.comments.map(renderComment));
    const status = state.view === 'reported' ? 'reported' : $('filter-status').value;
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
    const claimNote = el('p', { className: 'claim', id: 'claim-' + comment.id });
    showClaim(claimNote, comment.claim);
    const stale = state.stale.get(comment.id);
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
    if (comment.reports) {
      const dismiss = el('button', { type: 'button' }, 'Dismiss reports');
      dismiss.setAttribute('aria-describedby', heading.id);
      dismiss.addEventListener('click', () => dismissReports(comment));
      actions.append(dismiss);
    }
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
    item.addEventListener('focusin', () => { state.current = index; paintCurrent(); claimSoon(); });
    item.append(el('div', { className: 'head' }, heading, el('span', { className: 'select' }, select, selectLabel)));
    if (stale) item.append(el('p', { className: 'stale', id: 'stale-' + comment.id }, stale.text));
    item.append(claimNote, meta, text);
    if (comment.reasons.length) item.append(reasons);
    if (comment.reports) item.append(...renderReports(comment));
    item.append(actions, history);
    return item;
  }

  // -- claims and reports ----------------------------------------------------------------------

  const claimPath = (id) => '/comments/' + encodeURIComponent(id) + '/claim';

  function showClaim(node, claim) {
    const other = claim && claim.moderator !== sessionStorage.getItem(NAME_KEY);
    node.hidden = !other;
    node.textContent = other ? 'Being reviewed by ' + claim.moderator + ' since ' + formatTime(claim.since) + '.' : '';
  }

  function refreshClaims() {
    for (const comment of state.comments) {
      const node = $('claim-' + comment.id);
      if (node) showClaim(node, comment.claim);
    }
  }

  // The focused comment is claimed once the focus rests on it; the previous claim is released.
  function claimSoon() {
    clearTimeout(state.claimTimer);
    state.claimTimer = setTimeout(() => {
      const comment = state.comments[state.current];
      if (comment && comment.id !== state.claimed) claim(comment.id).catch(() => {});
    }, CLAIM_DELAY_MS);
  }

  async function claim(id) {
    const previous = state.claimed;
    state.claimed = id;
    state.claimedAt = Date.now();
    if (previous && previous !== id) api('DELETE', claimPath(previous)).catch(() => {});
    const answer = await api('POST', claimPath(id));
    const comment = state.comments.find((c) => c.id === id);
    if (answer.ok) {
      sessionStorage.setItem(NAME_KEY, answer.doc.moderator);
      if (comment) comment.claim = { moderator: answer.doc.moderator, since: answer.doc.since, until: answer.doc.until };
    } else {
      if (state.claimed === id) state.claimed = null;
      if (comment && answer.status === 409 && answer.doc.holder) {
        comment.claim = { moderator: answer.doc.holder, since: answer.doc.claimed_since, until: answer.doc.claimed_until };
      }
    }
    refreshClaims();
  }

  function renderReports(comment) {
    const counts = el('ul', { className: 'reports', ariaLabel: 'Reader reports' });
    for (const [reason, n] of Object.entries(comment.reports)) {
      counts.append(el('li', { className: 'reason' }, (REPORTS[reason] || reason) + ': ' + (n === 1 ? '1 report' : n + ' reports')));
    }
    const notes = el('ul', { className: 'report-notes', id: 'notes-' + comment.id, ariaLabel: 'Notes of the reports', hidden: true });
    return [counts, notes];
  }

  // The readers' notes of every reported comment shown (never who sent them).
  async function loadReportNotes() {
    await Promise.all(state.comments.filter((c) => c.reports).map(async (comment) => {
      const answer = await api('GET', '/comments/' + encodeURIComponent(comment.id) + '/reports');
      const list = $('notes-' + comment.id);
      if (!answer.ok || !list) return;
      const noted = answer.doc.reports.filter((r) => !r.dismissed && r.note);
      list.replaceChildren(...noted.map((r) => el('li', {},
        (REPORTS[r.reason] || r.reason) + ', ', el('time', { dateTime: r.at }, formatTime(r.at)), ': ' + r.note)));
      list.hidden = noted.length === 0;
    }));
  }

  async function dismissReports(comment) {
    const answer = await api('POST', '/comments/' + encodeURIComponent(comment.id) + '/reports/dismiss', {});
    const n = answer.ok ? answer.doc.dismissed : 0;
    announce(answer.ok
      ? 'Dismissed ' + (n === 1 ? '1 report' : n + ' reports') + ' of the comment by ' + comment.name + '.'
      : problemText(answer.doc));
    state.stale.delete(comment.id);
    await reload();
    markCurrent(state.current, true);
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

  // The decisions, each on the version of the comment shown: one comment through its own route
  // with If-Match, several (or a trusting approval, or an undo) in one bulk request with each
  // item's version. The results are the bulk route's, one per comment; null when refused whole.
  async function sendDecisions(items) {
    const shown = new Map(state.comments.map((c) => [c.id, c]));
    for (const item of items) {
      const comment = shown.get(item.comment_id);
      if (comment && comment.version) item.version = comment.version;
    }
    const [one] = items;
    if (items.length === 1 && !one.trust_author && one.action !== 'requeue') {
      const headers = one.version ? { 'If-Match': '"v' + one.version + '"' } : {};
      const path = '/comments/' + encodeURIComponent(one.comment_id) + '/' + one.action;
      const answer = await api('POST', path, one.note ? { note: one.note } : {}, headers);
      if (answer.ok) return [{ comment_id: one.comment_id, status: 200, comment: answer.doc }];
      if (answer.status < 500 && answer.doc.status) {
        return [{ comment_id: one.comment_id, status: answer.status, problem: answer.doc }];
      }
      announce(problemText(answer.doc));
      return null;
    }
    const answer = await api('POST', '/decisions', { decisions: items });
    if (answer.ok) return answer.doc.results;
    announce(problemText(answer.doc));
    return null;
  }

  // A refusal because the comment moved on (412): it is shown as it is now, saying who or what
  // moved it, until the moderator decides on it again.
  function keepStale(results) {
    const stale = results.filter((r) => r.status === 412 && r.problem && r.problem.current);
    for (const r of stale) {
      const index = state.comments.findIndex((c) => c.id === r.comment_id);
      const shown = state.comments[index] || {};
      const current = { ...shown, ...r.problem.current, email: shown.email };
      state.stale.set(r.comment_id, { comment: current, index: Math.max(0, index), text: movedText(current) });
    }
    for (const r of results) if (r.status === 200) state.stale.delete(r.comment_id);
    return stale;
  }

  // Who moved it: the latest of its history (decisions, the policy) and its author's edits
  // (an edit that keeps the status is in `edits` only).
  function movedText(comment) {
    const history = comment.history || [];
    const edits = comment.edits || [];
    let last = history[history.length - 1];
    const edit = edits[edits.length - 1];
    if (edit && (!last || edit.at >= last.at)) last = { actor: 'author', at: edit.at };
    const actor = last ? last.actor : comment.decided_by ? 'moderator:' + comment.decided_by : '';
    const who = actor === 'author' ? 'its author (an edit)'
      : actor.startsWith('moderator:') ? actor.slice('moderator:'.length)
      : actor || 'someone';
    const when = last ? ' at ' + formatTime(last.at) : '';
    return 'Not decided: this comment changed since you read it. It is now ' + comment.status +
      ', moved by ' + who + when + ' (version ' + comment.version + '). Check it and decide again.';
  }

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
    const results = await sendDecisions(decisions);
    if (!results) return;
    const done = results.filter((r) => r.status === 200);
    const failed = results.filter((r) => r.status !== 200);
    const changed = done.filter((r) => before.get(r.comment_id) !== r.comment.status);
    const stale = keepStale(results);
    $('note').value = '';
    for (const id of ids) state.selected.delete(id);
    if (done.some((r) => r.comment_id === state.claimed)) state.claimed = null; // released
    const what = DONE[action] + (trust ? ' and trusted' : '');
    let text = what + ' ' + (done.length === 1 ? '1 comment' : done.length + ' comments') + '.';
    if (stale.length) text += ' ' + (stale.length === 1 ? '1 comment was' : stale.length + ' comments were') + ' changed meanwhile: shown as they are now.';
    const others = failed.filter((r) => !stale.includes(r));
    if (others.length) text += ' ' + others.length + ' failed: ' + others.map((r) => problemText(r.problem)).join(' ');
    offerUndo(text, changed.map((r) => ({ comment_id: r.comment_id, action: BACK_TO[before.get(r.comment_id)], version: r.comment.version })));
    await Promise.all([reload(), refreshCount()]);
    if (stale.length) {
      const at = state.comments.findIndex((c) => c.id === stale[0].comment_id);
      if (at >= 0) markCurrent(at, true);
    }
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
    // Each item names the version the decision left: a comment moved on since is left alone.
    const back = state.undo.back.map((item) => ({ ...item, note: 'undo' }));
    hideUndo();
    const answer = await api('POST', '/decisions', { decisions: back });
    const results = answer.ok ? answer.doc.results : [];
    const undone = results.filter((r) => r.status === 200).length;
    const stale = keepStale(results);
    let text = answer.ok ? 'Undone: ' + (undone === 1 ? '1 comment' : undone + ' comments') + ' restored.' : problemText(answer.doc);
    if (stale.length) text += ' ' + stale.length + ' changed meanwhile, left as they are.';
    announce(text);
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

  // The Reported tab is the queue's section showing the Reported queue. True when the list to
  // show changed (the caller reloads it).
  function showTab(name) {
    if (!['queue', 'reported', 'articles', 'policy'].includes(name)) name = 'queue';
    const section = name === 'reported' ? 'queue' : name;
    for (const tab of document.querySelectorAll('.tab')) tab.hidden = tab.id !== section;
    for (const link of document.querySelectorAll('[data-tab]')) {
      if (link.dataset.tab === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const view = name === 'reported' ? 'reported' : name === 'queue' ? 'list' : state.view;
    if (view === state.view) return false;
    state.view = view;
    state.cursors = [null];
    state.current = -1;
    state.stale.clear();
    state.selected.clear();
    for (const field of document.querySelectorAll('[data-list-filter]')) field.hidden = view === 'reported';
    $('queue-title').textContent = view === 'reported' ? 'Reported comments' : 'Comments';
    return true;
  }

  function switchTab(name) {
    if (showTab(name) && token() && !$('console').hidden) reload().catch(() => {});
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
      link.addEventListener('click', () => switchTab(link.dataset.tab));
    }
    window.addEventListener('hashchange', () => switchTab(location.hash.slice(1)));
    document.addEventListener('keydown', onKey);
    window.addEventListener('unhandledrejection', (event) => {
      if (event.reason instanceof Refused) event.preventDefault();
    });
  }

  wire();
  if (token()) start().catch(() => {});
  else signOut();
})();
