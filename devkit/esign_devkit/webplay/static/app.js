// The browser playground's page: renders /api/state (long polling) and posts what the person does.
// Plain JavaScript, no build step. Chats are keyed by message id, so an edit replaces its message
// in place and the history never jumps.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

let version = -1;
let boot = "";
let current = null;            // the last state from the server
let activePane = null;         // "buyer:<id>" | "staff" | "side"
let agentId = null;            // the agent the person writes as in the staff group
let groupId = null;            // the group shown in the staff pane
let topicKey = null;           // "general" | "<thread id>"
let followTopics = true;       // follow the most recent topic until one is picked by hand
const buyerPanes = new Map();  // buyer id -> pane element
const seenCounts = new Map();  // pane key -> message count, for the dots on the tabs
const unread = new Set();
const narrow = window.matchMedia("(max-width: 760px)");

// --- small helpers -----------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

// Every time on the page is Beijing time, as the bot's orders, SMS and expiry dates are, whatever
// the browser's own zone (the top bar says so).
const BEIJING_CLOCK = new Intl.DateTimeFormat("en-GB", {timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false});

function hhmm(seconds) {
  return BEIJING_CLOCK.format(new Date(seconds * 1000));
}

const URL_RE = /(https?:\/\/[^\s，。；、）)」]+)/g;

function linkified(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    if (match.index > last) frag.append(text.slice(last, match.index));
    const a = el("a", "link", match[0]);
    a.href = match[0];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    frag.append(a);
    last = match.index + match[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

const NAME_COLORS = ["#e17076", "#7bc862", "#e5a64e", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];
function nameColor(id) { return NAME_COLORS[Math.abs(Number(id) || 0) % NAME_COLORS.length]; }

function toast(text, kind = "info", paneEl = null) {
  const area = paneEl ? $(".toast-area", paneEl) : null;
  const box = area || document.body;
  const node = el("div", `toast ${kind}${area ? "" : " global"}`, text);
  box.append(node);
  setTimeout(() => node.classList.add("gone"), kind === "error" ? 5000 : 2600);
  setTimeout(() => node.remove(), kind === "error" ? 5600 : 3200);
}

async function api(path, body, paneEl = null) {
  let response;
  let data;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    data = await response.json();
  } catch (err) {
    toast(`网络错误 Network error: ${err.message || err}`, "error", paneEl);
    return null;
  }
  if (!response.ok || data.ok === false) {
    toast(data.error || `HTTP ${response.status}`, "error", paneEl);
    return null;
  }
  if (data.error) toast(`机器人出错 The bot raised: ${data.error}`, "error", paneEl);
  return data;
}

// --- panes and tabs ------------------------------------------------------------------------------

function paneElement(key) {
  if (key === "staff") return $("#staff");
  if (key === "side") return $("#side");
  return buyerPanes.get(Number(key.split(":")[1])) || null;
}

function activate(key, { scroll = true } = {}) {
  if (!paneElement(key)) return;
  activePane = key;
  unread.delete(key);
  for (const pane of document.querySelectorAll(".pane")) pane.classList.toggle("active", pane.dataset.pane === key);
  renderTabs();
  if (scroll && !narrow.matches) paneElement(key).scrollIntoView({ behavior: "smooth", inline: "nearest", block: "nearest" });
}

function renderTabs() {
  const tabs = $("#tabs");
  tabs.replaceChildren();
  const entries = [];
  for (const buyer of current ? current.buyers : []) entries.push([`buyer:${buyer.id}`, `👤 ${buyer.name}`]);
  entries.push(["staff", "🧑‍💼 客服群"]);
  const smsCount = current ? current.sms.items.length : 0;
  entries.push(["side", `📨 短信${smsCount ? ` ${smsCount}` : ""}`]);
  for (const [key, label] of entries) {
    const tab = el("button", "tab", label);
    tab.type = "button";
    tab.dataset.pane = key;
    tab.classList.toggle("active", key === activePane);
    if (unread.has(key)) tab.append(el("span", "dot"));
    tab.addEventListener("click", () => activate(key));
    tabs.append(tab);
  }
}

function noteActivity(key, count) {
  const before = seenCounts.get(key);
  seenCounts.set(key, count);
  if (before !== undefined && count > before && key !== activePane && narrow.matches) unread.add(key);
}

// --- messages ------------------------------------------------------------------------------------

function serviceRow(view, text) {
  const row = el("div", "msg service");
  row.dataset.id = view.id;
  row.append(el("span", "service-text", text));
  return row;
}

function initial(name) {
  // The first letter (a topic named "🟢 张伟 · #10001" shows 张), else the first character.
  const letter = (name || "").match(/\p{L}/u);
  return letter ? letter[0] : Array.from(name || "?")[0];
}

function preview(view) {
  if (view.text) return view.text.split("\n")[0];
  if (view.media) return `[${view.media}]`;
  if (view.invoice) return `💳 ${view.invoice.title}`;
  if (view.contact) return `📱 ${view.contact.phone}`;
  return "";
}

// ctx: {chatId, me, group, onReply, paneEl}
function messageElement(view, ctx) {
  if (view.payment) return serviceRow(view, `✅ 已支付 ${view.payment.amount} · Payment sent`);
  if (view.topic_created !== undefined) return serviceRow(view, `🗂 话题已创建 Topic created: ${view.topic_created}`);

  const mine = !view.from_bot && view.sender.id === ctx.me;
  const row = el("div", `msg ${mine ? "me" : "them"}${view.invoice ? " has-invoice" : ""}`);
  row.dataset.id = view.id;
  const bubble = el("div", "bubble");
  row.append(bubble);

  if (ctx.group && !mine) {
    const name = el("div", "sender", view.from_bot ? `🤖 ${view.sender.name}` : view.sender.name);
    name.style.color = view.from_bot ? "#3390ec" : nameColor(view.sender.id);
    bubble.append(name);
  }
  if (view.reply_to) {
    const quote = el("button", "quote");
    quote.type = "button";
    quote.append(el("b", null, view.reply_to.sender || ""), el("span", null, view.reply_to.text || "…"));
    quote.addEventListener("click", () => {
      const target = row.parentElement && row.parentElement.querySelector(`[data-id="${view.reply_to.id}"]`);
      if (target) { target.scrollIntoView({ behavior: "smooth", block: "center" }); target.classList.add("flash"); setTimeout(() => target.classList.remove("flash"), 1200); }
    });
    bubble.append(quote);
  }
  if (view.media) {
    const media = el("div", `media ${view.media}`);
    const labels = { photo: "🖼 图片 Photo", document: `📄 ${view.file_name || "文件 File"}`, voice: "🎤 语音 Voice",
                     video: "🎬 视频 Video", sticker: "🙂 贴纸 Sticker" };
    media.textContent = labels[view.media] || view.media;
    bubble.append(media);
  }
  if (view.contact) {
    const card = el("div", "contact-card");
    const avatar = el("div", "avatar small", initial(view.contact.name));
    avatar.style.background = nameColor(view.sender.id);
    const info = el("div");
    info.append(el("b", null, view.contact.name || "—"), el("div", "phone", view.contact.phone));
    info.append(el("small", null, view.contact.own ? "分享了自己的手机号 Own phone" : "他人名片 Someone else's contact"));
    card.append(avatar, info);
    bubble.append(card);
  }
  if (view.invoice) {
    const inv = view.invoice;
    const card = el("div", "invoice");
    card.append(el("div", "invoice-title", inv.title), el("div", "invoice-desc", inv.description));
    const amount = el("div", "invoice-amount", inv.amount);
    amount.append(el("small", null, ` ${inv.currency} · 发票 Invoice`));
    card.append(amount);
    bubble.append(card);
  }
  if (view.text) {
    const text = el("div", "text");
    text.append(linkified(view.text));
    bubble.append(text);
  }
  if (view.unsupported) bubble.append(el("div", "text muted", `[${view.unsupported.join(", ")}]`));

  const meta = el("div", "meta");
  if (view.pinned) meta.append(el("span", "pin", "📌"));
  if (view.edited) meta.append(el("span", "edited", "已编辑"));
  const time = el("span", "time", hhmm(view.date));
  time.title = "北京时间 Beijing time (UTC+8)";
  meta.append(time);
  if (mine) meta.append(el("span", "ticks", "✓✓"));
  bubble.append(meta);

  const actions = el("div", "actions");
  const reply = el("button", "act", "↩");
  reply.type = "button";
  reply.title = "回复 Reply";
  reply.addEventListener("click", () => ctx.onReply(view));
  actions.append(reply);
  if (mine && view.text !== undefined && !view.contact) {
    const edit = el("button", "act", "✎");
    edit.type = "button";
    edit.title = "编辑 Edit";
    edit.addEventListener("click", async () => {
      const text = window.prompt("编辑消息 Edit the message", view.text);
      if (text !== null && text.trim() && text !== view.text) {
        await api(`/api/chats/${ctx.chatId}/edit`, { user: ctx.me, message_id: view.id, text }, ctx.paneEl);
      }
    });
    actions.append(edit);
  }
  row.append(actions);

  const rows = [];
  if (view.invoice && !ctx.group) {
    const pay = view.invoice.paid
      ? { text: `✅ 已支付 Paid ${view.invoice.amount}`, paid: true }
      : { text: `支付 ${view.invoice.amount} · Pay`, pay: true };
    rows.push([pay]);
  }
  for (const buttons of view.buttons || []) rows.push(buttons);
  if (rows.length) row.append(inlineKeyboard(view, rows, ctx));
  return row;
}

function inlineKeyboard(view, rows, ctx) {
  const keyboard = el("div", "ikb");
  for (const buttons of rows) {
    const line = el("div", "ikb-row");
    for (const button of buttons) {
      let node;
      if (button.url) {
        node = el("a", "ikb-btn url", button.text);
        node.href = button.url;
        node.target = "_blank";          // web checkout links (and Mini Apps) open in a new tab
        node.rel = "noopener noreferrer";
        node.title = button.web_app ? `Mini App: ${button.url}` : button.url;
        node.append(el("span", "corner", button.web_app ? "▣" : "↗"));
      } else if (button.copy_text !== undefined) {
        node = el("button", "ikb-btn", button.text);
        node.type = "button";
        node.addEventListener("click", async () => {
          try { await navigator.clipboard.writeText(button.copy_text); toast("已复制 Copied", "ok", ctx.paneEl); }
          catch { window.prompt("复制 Copy", button.copy_text); }
        });
      } else if (button.unsupported) {
        node = el("button", "ikb-btn", button.text);
        node.type = "button";
        node.disabled = true;
        node.title = `演练场不支持此类按钮 Not supported here: ${button.unsupported}`;
      } else {
        node = el("button", `ikb-btn${button.pay ? " pay" : ""}${button.paid ? " paid" : ""}`, button.text);
        node.type = "button";
        if (button.paid) node.disabled = true;
        else if (button.pay) node.addEventListener("click", () => openPay(ctx, view));
        else node.addEventListener("click", () => press(ctx, view.id, button.callback_data, node));
      }
      line.append(node);
    }
    keyboard.append(line);
  }
  return keyboard;
}

async function press(ctx, messageId, data, node) {
  node.classList.add("busy");
  const result = await api(`/api/chats/${ctx.chatId}/press`, { user: ctx.me, message_id: messageId, data }, ctx.paneEl);
  node.classList.remove("busy");
  if (!result) return;
  if (result.alert && result.notice) showAlert(result.notice);
  else if (result.notice) toast(result.notice, "info", ctx.paneEl);
  else if (!result.answered) toast("机器人没有应答这次点击 The bot did not answer this tap", "error", ctx.paneEl);
}

function followBottom(container) {
  // A chat stays scrolled to its newest message unless the person scrolled up, also when the
  // pane gets narrower (another buyer added) and its messages grow taller.
  if (container._follows) return;
  container._follows = true;
  container._stick = true;
  container.addEventListener("scroll", () => {
    container._stick = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
  });
  new ResizeObserver(() => { if (container._stick) container.scrollTop = container.scrollHeight; }).observe(container);
}

function renderHistory(container, views, ctx) {
  followBottom(container);
  const nearBottom = container._stick || container.childElementCount === 0;
  const existing = new Map();
  for (const node of container.children) if (node.dataset.id) existing.set(node.dataset.id, node);
  let previous = null;
  let added = false;
  for (const view of views) {
    const key = String(view.id);
    const signature = JSON.stringify(view) + "|" + ctx.me;
    let node = existing.get(key);
    if (node && node._signature !== signature) {
      const fresh = messageElement(view, ctx);
      fresh._signature = signature;
      fresh.classList.add("flash");           // an edit in place: the message changes where it is
      setTimeout(() => fresh.classList.remove("flash"), 1200);
      node.replaceWith(fresh);
      node = fresh;
    } else if (!node) {
      node = messageElement(view, ctx);
      node._signature = signature;
      added = true;
    }
    existing.delete(key);
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (node !== wanted) container.insertBefore(node, wanted);
    previous = node;
  }
  for (const node of existing.values()) if (node.dataset.id) node.remove();
  if (added || nearBottom) {
    container.scrollTop = container.scrollHeight;
    container._stick = true;
    requestAnimationFrame(() => { if (container._stick) container.scrollTop = container.scrollHeight; });
  }
}

// --- a buyer's chat ------------------------------------------------------------------------------

function buyerPane(buyer) {
  let pane = buyerPanes.get(buyer.id);
  if (pane) return pane;
  pane = $("#chat-template").content.firstElementChild.cloneNode(true);
  pane.dataset.pane = `buyer:${buyer.id}`;
  pane.dataset.buyer = buyer.id;
  pane._replyTo = null;
  const input = $(".input", pane);
  const ctx = () => ({ chatId: buyer.id, me: buyer.id, group: false, paneEl: pane, onReply: (view) => setReply(pane, view) });
  pane._ctx = ctx;

  $(".composer", pane).addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    const body = { text };
    if (pane._replyTo) body.reply_to = pane._replyTo;
    setReply(pane, null);
    if (!(await api(`/api/chats/${buyer.id}/send`, body, pane))) input.value = text;
  });
  $(".start", pane).addEventListener("click", () => api(`/api/chats/${buyer.id}/send`, { text: "/start" }, pane));
  $(".replying .x", pane).addEventListener("click", () => setReply(pane, null));
  $(".kb-toggle", pane).addEventListener("click", () => {
    pane._keyboardHidden = !pane._keyboardHidden;
    $(".reply-kb", pane).hidden = pane._keyboardHidden;
  });
  wireAttach(pane, async (kind) => {
    if (kind === "contact-other") return openContact(buyer, { own: false });
    const caption = input.value.trim();
    input.value = "";
    await api(`/api/chats/${buyer.id}/media`, { kind, caption }, pane);
  });
  pane.addEventListener("pointerdown", () => { if (activePane !== pane.dataset.pane) activate(pane.dataset.pane, { scroll: false }); });
  $("#panes").insertBefore(pane, $("#staff"));
  buyerPanes.set(buyer.id, pane);
  return pane;
}

function setReply(pane, view) {
  pane._replyTo = view ? view.id : null;
  const bar = $(".replying", pane);
  bar.hidden = !view;
  if (view) {
    $(".replying-text", bar).textContent = `↩ ${view.from_bot ? "🤖 " : ""}${view.sender.name}: ${preview(view)}`;
    $(".input", pane).focus();
  }
}

function wireAttach(scope, onPick) {
  const menu = $(".attach-menu", scope);
  $(".attach", scope).addEventListener("click", (event) => { event.stopPropagation(); menu.hidden = !menu.hidden; });
  for (const item of menu.querySelectorAll("button")) {
    item.addEventListener("click", () => { menu.hidden = true; onPick(item.dataset.kind); });
  }
  document.addEventListener("click", () => { menu.hidden = true; });
}

function renderBuyer(buyer) {
  const pane = buyerPane(buyer);
  $(".sub", pane).textContent = `${buyer.name} · ${buyer.phone_masked} · ${buyer.lang === "en" ? "English" : "中文"}`;
  const state = $(".state", pane);
  state.textContent = buyer.state || "首页 home";
  const empty = buyer.messages.length === 0;
  $(".start", pane).hidden = !empty;
  $(".composer", pane).hidden = empty;
  renderHistory($(".history", pane), buyer.messages, pane._ctx());

  const keyboard = $(".reply-kb", pane);
  const toggle = $(".kb-toggle", pane);
  const signature = JSON.stringify(buyer.keyboard);
  if (keyboard._signature !== signature) {
    keyboard._signature = signature;
    keyboard.replaceChildren();
    pane._keyboardHidden = false;
    for (const buttons of buyer.keyboard ? buyer.keyboard.rows : []) {
      const line = el("div", "rkb-row");
      for (const button of buttons) {
        const node = el("button", `rkb-btn${button.request_contact ? " contact" : ""}`, button.text);
        node.type = "button";
        node.addEventListener("click", () => {
          if (button.request_contact) openContact(buyer, { own: true });
          else api(`/api/chats/${buyer.id}/send`, { text: button.text }, pane);
        });
        line.append(node);
      }
      keyboard.append(line);
    }
    $(".input", pane).placeholder = (buyer.keyboard && buyer.keyboard.placeholder) || "输入消息… Message";
  }
  keyboard.hidden = !buyer.keyboard || pane._keyboardHidden || empty;
  toggle.hidden = !buyer.keyboard;
  noteActivity(`buyer:${buyer.id}`, buyer.messages.length);
}

// --- dialogs -------------------------------------------------------------------------------------

function openPay(ctx, view) {
  const dialog = $("#pay-dialog");
  $(".pay-title", dialog).textContent = view.invoice.title;
  $(".pay-desc", dialog).textContent = view.invoice.description;
  $(".pay-amount", dialog).textContent = view.invoice.amount;
  const error = $(".error", dialog);
  error.hidden = true;
  const confirm = $(".pay-confirm", dialog);
  confirm.hidden = false;
  confirm.disabled = false;
  confirm.replaceChildren(`确认支付 ${view.invoice.amount} `, el("small", null, "Pay"));
  confirm.onclick = async () => {
    confirm.disabled = true;
    const result = await api(`/api/chats/${ctx.chatId}/pay`, { user: ctx.me, message_id: view.id }, ctx.paneEl);
    confirm.disabled = false;
    if (result && result.ok) {
      dialog.close();
      toast(`支付成功 Paid ${result.amount}`, "ok", ctx.paneEl);
    } else if (result) {
      error.textContent = `机器人拒绝了这笔付款 The bot refused the payment: ${result.error}`;
      error.hidden = false;
      confirm.hidden = true;
    }
  };
  dialog.showModal();
}

function openContact(buyer, { own }) {
  const dialog = $("#contact-dialog");
  const input = $("input[name=phone]", dialog);
  $(".contact-title", dialog).textContent = own ? "分享手机号 Share your phone number" : "发送他人名片 Send someone else's contact";
  $(".contact-text", dialog).textContent = own
    ? "机器人将获得您的手机号。The bot will get your phone number."
    : "这张名片属于另一位 Telegram 用户。The card belongs to another Telegram user.";
  input.value = own ? buyer.phone : "";
  input.placeholder = own ? "" : "+8613900000000";
  const pane = buyerPanes.get(buyer.id);
  $(".contact-confirm", dialog).onclick = async () => {
    const phone = input.value.trim();
    if (!own && !phone) { input.focus(); return; }
    dialog.close();
    await api(`/api/chats/${buyer.id}/contact`, { phone, own }, pane);
  };
  dialog.showModal();
}

function openAddBuyer() {
  const dialog = $("#buyer-dialog");
  const form = $("form", dialog);
  form.reset();
  const demo = current && current.info.demo_phone;
  const hint = $(".demo-hint", dialog);
  hint.replaceChildren();
  if (demo) {
    const use = el("button", "linklike", `使用 ${demo}`);
    use.type = "button";
    use.addEventListener("click", () => { form.elements.phone.value = demo; });
    hint.append(`演示企业「${current.info.demo_enterprise}」的超级管理员手机号（用它才能绑定订单）：`, use);
  }
  $(".buyer-confirm", dialog).onclick = async () => {
    const body = { name: form.elements.name.value, lang: form.elements.lang.value, phone: form.elements.phone.value };
    const result = await api("/api/buyers", body);
    if (!result) return;
    dialog.close();
    activePane = `buyer:${result.id}`;
    await refreshNow();
  };
  dialog.showModal();
}

function showAlert(text) {
  const dialog = $("#alert-dialog");
  $(".alert-text", dialog).textContent = text;
  dialog.showModal();
}

// --- the staff group -----------------------------------------------------------------------------

function staffCtx() {
  const pane = $("#staff");
  return { chatId: groupId, me: agentId, group: true, paneEl: pane, onReply: (view) => setReply(pane, view) };
}

function renderStaff(state) {
  const groups = state.groups;
  const hasGroup = groups.length > 0;
  $("#staff-empty").hidden = hasGroup;
  $("#staff-body").hidden = !hasGroup;
  $("#agent-pick").hidden = !hasGroup || state.agents.length === 0;
  if (!hasGroup) {
    $("#staff-sub").textContent = state.staff.hand_off ? "未配置客服群 no staff group configured" : "客服转接开发中 hand-off in progress";
    $("#staff-hint").hidden = true;
    return;
  }
  if (!groups.some((g) => g.id === groupId)) groupId = groups[0].id;
  const group = groups.find((g) => g.id === groupId);

  const groupSelect = $("#group-select");
  groupSelect.hidden = groups.length < 2;
  groupSelect.replaceChildren(...groups.map((g) => { const o = el("option", null, g.title); o.value = g.id; o.selected = g.id === groupId; return o; }));

  const agentSelect = $("#agent-select");
  if (!state.agents.some((a) => a.id === agentId) && state.agents.length) agentId = state.agents[0].id;
  agentSelect.replaceChildren(...state.agents.map((a) => { const o = el("option", null, a.name); o.value = a.id; o.selected = a.id === agentId; return o; }));

  $("#staff-title").textContent = group.title || "客服群";
  $("#staff-sub").textContent = group.forum
    ? `论坛 forum · ${group.topics.length} 个话题 topics · ${state.agents.length} 位客服 agents`
    : `群组 group · ${group.messages.length} 条消息 messages`;

  // The topic list: General (messages outside topics), then the topics, most recent first.
  const general = group.messages.filter((m) => m.thread === null && m.topic_created === undefined);
  const topics = [...group.topics].sort((a, b) => b.last_id - a.last_id);
  if (followTopics && topics.length) topicKey = String(topics[0].id);
  if (topicKey !== "general" && !topics.some((t) => String(t.id) === topicKey)) topicKey = "general";

  const list = $("#topics");
  list.replaceChildren();
  const entries = [{ key: "general", name: "综合 General", color: 0x8e9aa6, count: general.length, last: general.length ? preview(general[general.length - 1]) : "", closed: false }];
  for (const t of topics) entries.push({ key: String(t.id), name: t.name, color: t.color, count: t.count, last: t.last, closed: t.closed });
  for (const entry of entries) {
    const item = el("li", `topic${entry.key === topicKey ? " active" : ""}${entry.closed ? " closed" : ""}`);
    item.dataset.thread = entry.key;
    const icon = el("span", "topic-icon", entry.key === "general" ? "#" : initial(entry.name));
    icon.style.background = `#${(entry.color ?? 0x6fb9f0).toString(16).padStart(6, "0")}`;
    const body = el("div", "topic-body");
    const title = el("div", "topic-name", entry.name);
    if (entry.closed) title.append(el("span", "closed-badge", "已关闭 closed"));
    body.append(title, el("div", "topic-last", entry.last || "—"));
    item.append(icon, body, el("span", "topic-count", entry.count ? String(entry.count) : ""));
    item.addEventListener("click", () => {
      followTopics = false;
      topicKey = entry.key;
      $("#staff-history").replaceChildren();
      renderStaff(current);
    });
    list.append(item);
  }

  const shown = topicKey === "general" ? general : group.messages.filter((m) => String(m.thread) === topicKey);
  const topic = topics.find((t) => String(t.id) === topicKey);
  const head = $("#topic-head");
  head.replaceChildren(el("b", null, topic ? topic.name : (group.forum ? "综合 General" : group.title)));
  if (topic && topic.closed) head.append(el("span", "closed-badge", "已关闭 closed"));
  const history = $("#staff-history");
  if (history.dataset.key !== `${groupId}:${topicKey}:${agentId}`) {
    history.replaceChildren();
    history.dataset.key = `${groupId}:${topicKey}:${agentId}`;
  }
  renderHistory(history, shown, staffCtx());
  const hint = $("#staff-hint");
  hint.hidden = shown.length > 0;
  if (topics.length || topicKey !== "general") {
    hint.textContent = "这个话题里还没有消息。No messages in this topic yet.";
  } else if (!state.staff.desk) {
    hint.textContent = "客服转接正在开发中：这个版本的机器人还不处理客服群，所以这里暂时不会出现话题。\n"
      + "The customer-service hand-off is being built: this build's bot does not work the staff group yet, so no topics appear.";
  } else {
    hint.textContent = "还没有话题。买家点「购买咨询」或「联系客服」后，这里会出现他的话题和接待卡片。\n"
      + "No topics yet: when a buyer asks for customer service, their topic and intake card appear here.";
  }

  const pinnedBar = $("#pinned-bar");
  const pinned = shown.filter((m) => m.pinned).pop();
  pinnedBar.hidden = !pinned;
  if (pinned) {
    pinnedBar.replaceChildren(el("b", null, "📌 置顶 Pinned"), el("span", null, preview(pinned)));
    pinnedBar.onclick = () => {
      const target = history.querySelector(`[data-id="${pinned.id}"]`);
      if (target) target.scrollIntoView({ behavior: "smooth", block: "start" });
    };
  }
  const agent = state.agents.find((a) => a.id === agentId);
  $("#staff-composer .input").placeholder = agent ? `以「${agent.name}」身份发言… Write as ${agent.name}` : "以客服身份发言…";
  noteActivity("staff", group.messages.length);
}

function wireStaff() {
  const pane = $("#staff");
  const input = $("#staff-composer .input");
  $("#staff-composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || groupId === null) return;
    input.value = "";
    followTopics = false;             // writing in a topic: stay on it when another one gets busy
    const body = { user: agentId, text };
    if (topicKey !== "general") body.thread_id = Number(topicKey);
    if (pane._replyTo) body.reply_to = pane._replyTo;
    setReply(pane, null);
    if (!(await api(`/api/chats/${groupId}/send`, body, pane))) input.value = text;
  });
  $(".replying .x", pane).addEventListener("click", () => setReply(pane, null));
  wireAttach($("#staff-composer"), async (kind) => {
    const body = { user: agentId, kind, caption: input.value.trim() };
    if (topicKey !== "general") body.thread_id = Number(topicKey);
    input.value = "";
    await api(`/api/chats/${groupId}/media`, body, pane);
  });
  $("#agent-select").addEventListener("change", (event) => { agentId = Number(event.target.value); renderStaff(current); });
  $("#group-select").addEventListener("change", (event) => { groupId = Number(event.target.value); topicKey = "general"; renderStaff(current); });
  $("#add-agent").addEventListener("click", async () => {
    const name = window.prompt("新客服的名字 The new agent's name", "");
    if (name === null) return;
    const result = await api("/api/agents", { name });
    if (result) { agentId = result.id; await refreshNow(); }
  });
  pane.addEventListener("pointerdown", () => { if (activePane !== "staff") activate("staff", { scroll: false }); });
}

// --- the side panel --------------------------------------------------------------------------------

function renderSide(state) {
  const sms = $("#sms");
  const signature = JSON.stringify(state.sms);
  if (sms._signature !== signature) {
    sms._signature = signature;
    sms.replaceChildren();
    if (state.sms.backend !== "console") {
      sms.append(el("li", "none", `短信后端是 ${state.sms.backend}：验证码发给了真实的短信服务。`));
    } else if (!state.sms.items.length) {
      const none = el("li", "none", "还没有短信。验证手机号时，验证码会出现在这里。");
      none.append(el("br"), el("small", null, "No SMS yet: codes show here."));
      sms.append(none);
    }
    for (const item of state.sms.items) {
      const li = el("li", "sms-item");
      li.dataset.buyer = item.buyer_id ?? "";
      const head = el("div", "sms-head");
      head.append(el("b", null, item.buyer || "—"), el("span", "to", item.to), el("time", null, item.at));
      li.append(head, el("div", "sms-text", item.text));
      if (item.code) {
        const codeLine = el("div", "sms-code");
        codeLine.append(el("span", "code", item.code));
        if (item.buyer_id !== null && item.buyer_id !== undefined) {
          const fill = el("button", "fill", "填入 Fill in");
          fill.type = "button";
          fill.addEventListener("click", () => {
            const pane = buyerPanes.get(item.buyer_id);
            if (!pane) return;
            activate(`buyer:${item.buyer_id}`);
            const input = $(".input", pane);
            input.value = item.code;
            input.focus();
          });
          codeLine.append(fill);
        }
        li.append(codeLine);
      }
      sms.append(li);
    }
  }

  const ents = $("#enterprises");
  ents.replaceChildren();
  for (const ent of state.enterprises) {
    const li = el("li", "ent");
    const title = el("div", "ent-name", ent.name);
    title.append(el("span", `ent-badge${ent.verified ? " ok" : ""}`, ent.verified ? "已认证" : "未认证"));
    const facts = el("div", "ent-facts");
    facts.append(el("span", `edition ${ent.edition_code}`, ent.edition));
    facts.append(el("span", null, `到期 ${ent.expires || "—"}`));
    facts.append(el("span", null, `剩余合同 ${ent.contracts_left}`));
    facts.append(el("span", null, `成员 ${ent.members}`));
    li.append(title, facts, el("small", "ent-id", ent.id));
    ents.append(li);
  }

  const about = $("#about");
  about.replaceChildren();
  const lines = [
    ["存储 Store", state.info.store || "—"],
    ["演示企业 Demo enterprise", state.info.demo_enterprise || "—"],
    ["演示手机号 Demo phone", state.info.demo_phone || "—"],
    ["机器人 Bot", `@${state.info.bot_username || "bot"}`],
  ];
  if (state.info.checkout_url) lines.push(["网页收银台 Web checkout", state.info.checkout_url]);
  const dl = el("dl");
  for (const [k, v] of lines) dl.append(el("dt", null, k), el("dd", null, v));
  about.append(dl);
  about.append(el("p", "hint", "这是测试所用的同一个模拟 Telegram（devkit/esign_devkit/testing/fake_telegram.py）和同一个 dispatcher。终端版：python -m bot playground"));
  if (state.errors.length) {
    about.append(el("h4", null, "最近的错误 Recent errors"));
    for (const error of state.errors) about.append(el("pre", "err", error));
  }
}

// --- the loop --------------------------------------------------------------------------------------

function render(state) {
  current = state;
  for (const buyer of state.buyers) renderBuyer(buyer);
  for (const [id, pane] of buyerPanes) {
    if (!state.buyers.some((b) => b.id === id)) { pane.remove(); buyerPanes.delete(id); }
  }
  renderStaff(state);
  renderSide(state);
  if (!activePane || !paneElement(activePane)) activePane = state.buyers.length ? `buyer:${state.buyers[0].id}` : "staff";
  activate(activePane, { scroll: false });
  document.body.dataset.version = state.version;
}

async function refreshNow() {
  const response = await fetch("/api/state");
  const state = await response.json();
  version = state.version;
  boot = state.boot;
  render(state);
}

function setOnline(online) {
  const conn = $("#conn");
  conn.classList.toggle("off", !online);
  conn.title = online ? "已连接 Connected" : "连接中断，重试中 Reconnecting…";
}

async function poll() {
  for (;;) {
    try {
      const response = await fetch(`/api/state?since=${version}&boot=${encodeURIComponent(boot)}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const state = await response.json();
      setOnline(true);
      if (state.boot !== boot) {   // the server restarted: start over
        for (const pane of buyerPanes.values()) pane.remove();
        buyerPanes.clear();
        $("#staff-history").replaceChildren();
      }
      if (state.version !== version || state.boot !== boot) {
        version = state.version;
        boot = state.boot;
        render(state);
      }
    } catch (err) {
      setOnline(false);
      await sleep(1500);
    }
  }
}

// Enter in a dialog's field confirms it (instead of the form's first button, 取消).
for (const dialog of document.querySelectorAll("dialog.sheet")) {
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !event.target.matches("input")) return;
    event.preventDefault();
    const confirm = dialog.querySelector(".primary:not([hidden])");
    if (confirm) confirm.click();
  });
}

$("#add-buyer").addEventListener("click", openAddBuyer);
narrow.addEventListener("change", () => activate(activePane || "staff", { scroll: false }));
wireStaff();
poll();
