"""Every Redis key the services use, in one place.

Every key carries a Redis Cluster hash tag (the part in braces), so that the keys one
operation touches together always share a hash slot (docs/deploy.md, "Redis Cluster"):
- the ledger, `{esign}:...`: orders, enterprises, payments, codes, checkout links, tickets
  and the jobs' marks. A payment, a binding or a delivery changes an order, its charge and
  its enterprise in one transaction, so they must live in one slot; on a cluster the ledger
  is on one shard (a few writes a purchase).
- a conversation, `fsm:{<bot>:<chat>:<user>}:...` (bot.state.storage.TaggedKeyBuilder): its
  state, data, lock and handled-update marks, taken and stored by one script an update.
  Conversations, the bulk of the traffic, spread over the shards.
On a single Redis or Sentinel the tags change nothing but the names.

| key                                          | type    | what                                              |
|----------------------------------------------|---------|---------------------------------------------------|
| {esign}:order:<order_id>                     | string  | one order, JSON (services.orders.Order)           |
| {esign}:user:<user_id>:orders                | zset    | a buyer's order ids, scored by creation time      |
| {esign}:cart-order:<cart_id>                 | string  | the order a cart became (double-tap guard)        |
| {esign}:charge:<charge_id>                   | string  | the order a payment charge was applied to         |
| {esign}:refunds                              | list    | payments kept for a refund (JSON)                 |
| {esign}:ent:<enterprise_id>                  | string  | one enterprise, JSON (services.enterprises)       |
| {esign}:ents                                 | set     | all enterprise ids                                |
| {esign}:phone:<e164>:ents                    | set     | enterprises a phone is a member of                |
| {esign}:code:<e164>:<user_id>                | hash    | a user's live SMS code for a phone (HMAC only)    |
| {esign}:code-cooldown:<e164>:<user_id>       | string  | when that user may have the next code (clock ts)  |
| {esign}:code-sent:<e164>                     | zset    | codes sent to a phone in the last day, by time    |
| {esign}:code-sent-unproven:<e164>            | zset    | of those, asked by users not proven its owner     |
| {esign}:code-user:<user_id>                  | zset    | codes a user asked for in the last day, by time   |
| {esign}:phone-owners:<e164>                  | zset    | users who proved they own the phone, by when      |
| {esign}:update:<bot_id>:<update_id>          | string  | an update with no user, already handled (dedup)   |
| {esign}:webhook:<bot_id>                     | string  | fingerprint of the registered webhook             |
| {esign}:checkout:<token>                     | string  | a web checkout link, JSON (services.checkout)     |
| {esign}:checkout-order:<order_id>            | string  | the live checkout token of an order               |
| {esign}:checkout-cart:<user_id>:<digest>     | string  | the live checkout token of a cart offered in chat |
| {esign}:checkout-told:<charge_id>            | string  | the chat was told of this web payment (once)      |
| {esign}:web-rate:<scope>:<who>:<window>      | string  | web requests in a rate-limit window (counter)     |
| {esign}:sandbox-pay:<payment_id>             | string  | a sandbox gateway payment, JSON                   |
| {esign}:sandbox-order:<order_id>             | string  | the sandbox payment of an order                   |
| {esign}:sandbox-refund:<refund_id>           | string  | a sandbox gateway refund, JSON                    |
| {esign}:sandbox-refunds:<order_id>           | string  | a sandbox payment's refunds: refund id → fen, JSON |
| {esign}:refund-state:<refund_id>             | string  | where a refund case stands, JSON (services.refunds) |
| {esign}:refund-told:<refund_id>              | string  | the buyer was told of this refund (once)          |
| {esign}:web-payment:<order_id>               | string  | the provider and scene an order is paid through   |
| {esign}:web-payments:open                    | zset    | orders open at a provider, by expiry (closed then)|
| {esign}:web-query:<order_id>                 | string  | the provider was asked about this order lately    |
| {esign}:wechat-oauth:<nonce>                 | string  | a WeChat OAuth state already used (JSAPI, once)   |
| {esign}:orders:pending                       | zset    | unpaid order ids by expiry (services.scheduler)   |
| {esign}:phone:<e164>:chats                   | hash    | chats where a phone was verified: chat id → lang  |
| {esign}:trial-lead:<lead_id>                 | string  | a trial application for sales, JSON (trials)      |
| {esign}:trial-leads                          | zset    | trial lead ids by submission time                 |
| {esign}:scheduler:lease                      | string  | the instance running this tick (token, PX lease)  |
| {esign}:scheduler:tick:<slot>                | string  | a tick slot claimed by one instance (scheduler)   |
| {esign}:reminder:<ent>:<what>:<until>:<days> | string  | a reminder sent once (scheduler)                  |
| {esign}:support:customer:<user_id>           | string  | a customer's help-desk record, JSON (support)     |
| {esign}:support:ticket:<ticket_id>           | string  | one support ticket, JSON (services.support)       |
| {esign}:support:queue                        | zset    | pending ticket ids by waiting-since               |
| {esign}:support:user:<user_id>:tickets       | zset    | a customer's tickets by creation (history, capped)|
| {esign}:support:transcript:<ticket_id>       | list    | a ticket's messages, JSON, capped                 |
| {esign}:support:topic:<chat>:<thread>        | string  | the customer a staff forum topic belongs to       |
| {esign}:support:topic-lock:<user_id>         | string  | lock while the customer's topic is created        |
| {esign}:support:link:<chat>:<message>        | string  | "chat:message" of a relayed copy (TTL 30 days)    |
| {esign}:support:flood:<user_id>:<window>     | string  | customer messages in a flood window (counter)     |
| {esign}:support:agent:<agent_id>             | string  | an agent: name, username, alias, JSON             |
| {esign}:support:agents                       | set     | agent ids                                         |
| {esign}:support:quote:<order_id>             | string  | an order an agent issued (consultation), JSON     |
| {esign}:support:quotes                       | zset    | quoted orders staff has not heard were paid       |
| {esign}:support:quote-proposal:<id>          | string  | a quote below the floor awaiting approval (1 h)   |
| {esign}:support:invoice:<order_id>           | string  | when the order's invoice was issued (R16, ISO)    |
| fsm:{<bot>:<chat>:<user>}:<state/data/lock>  | string  | a conversation (bot.state.storage)                |
| fsm:{<bot>:<chat>:<user>}:seen:<update_id>   | string  | an update of it already handled (dedup)           |
"""
from __future__ import annotations

NS = "{esign}"  # the ledger's hash tag: see above


def order(order_id: str) -> str:
    return f"{NS}:order:{order_id}"


def user_orders(user_id: int) -> str:
    return f"{NS}:user:{user_id}:orders"


def cart_order(cart_id: str) -> str:
    return f"{NS}:cart-order:{cart_id}"


def charge(charge_id: str) -> str:
    return f"{NS}:charge:{charge_id}"


def refunds() -> str:
    return f"{NS}:refunds"


def enterprise(enterprise_id: str) -> str:
    return f"{NS}:ent:{enterprise_id}"


def enterprises() -> str:
    return f"{NS}:ents"


def phone_enterprises(phone: str) -> str:
    return f"{NS}:phone:{phone}:ents"


def code(phone: str, user_id: int) -> str:
    """The live code `user_id` asked for `phone`: one per (phone, user), so that nobody else's
    request replaces it."""
    return f"{NS}:code:{phone}:{user_id}"


def code_cooldown(phone: str, user_id: int) -> str:
    return f"{NS}:code-cooldown:{phone}:{user_id}"


def codes_sent(phone: str) -> str:
    return f"{NS}:code-sent:{phone}"


def codes_sent_unproven(phone: str) -> str:
    return f"{NS}:code-sent-unproven:{phone}"


def codes_by_user(user_id: int) -> str:
    return f"{NS}:code-user:{user_id}"


def phone_owners(phone: str) -> str:
    return f"{NS}:phone-owners:{phone}"


def update_seen(bot_id: int, update_id: int) -> str:
    return f"{NS}:update:{bot_id}:{update_id}"


def checkout_link(token: str) -> str:
    return f"{NS}:checkout:{token}"


def checkout_order(order_id: str) -> str:
    return f"{NS}:checkout-order:{order_id}"


def checkout_cart(user_id: int, digest: str) -> str:
    return f"{NS}:checkout-cart:{user_id}:{digest}"


def checkout_told(charge_id: str) -> str:
    return f"{NS}:checkout-told:{charge_id}"


def web_rate(scope: str, who: str, window: int) -> str:
    return f"{NS}:web-rate:{scope}:{who}:{window}"


def sandbox_payment(payment_id: str) -> str:
    return f"{NS}:sandbox-pay:{payment_id}"


def sandbox_order(order_id: str) -> str:
    return f"{NS}:sandbox-order:{order_id}"


def sandbox_refund(refund_id: str) -> str:
    return f"{NS}:sandbox-refund:{refund_id}"


def sandbox_order_refunds(order_id: str) -> str:
    return f"{NS}:sandbox-refunds:{order_id}"


def refund_state(refund_id: str) -> str:
    return f"{NS}:refund-state:{refund_id}"


def refund_told(refund_id: str) -> str:
    return f"{NS}:refund-told:{refund_id}"


def web_payment(order_id: str) -> str:
    return f"{NS}:web-payment:{order_id}"


def open_web_payments() -> str:
    return f"{NS}:web-payments:open"


def web_query(order_id: str) -> str:
    return f"{NS}:web-query:{order_id}"


def wechat_oauth_state(nonce: str) -> str:
    return f"{NS}:wechat-oauth:{nonce}"


# --- what enterprises buy for themselves: billing, trials, the scheduler ---------------------


def pending_orders() -> str:
    return f"{NS}:orders:pending"


def phone_chats(phone: str) -> str:
    return f"{NS}:phone:{phone}:chats"


def trial_lead(lead_id: str) -> str:
    return f"{NS}:trial-lead:{lead_id}"


def trial_leads() -> str:
    return f"{NS}:trial-leads"


def scheduler_lease() -> str:
    return f"{NS}:scheduler:lease"


def scheduler_tick(slot: int) -> str:
    return f"{NS}:scheduler:tick:{slot}"


def reminder_sent(enterprise_id: str, what: str, until_ts: int, days: int) -> str:
    return f"{NS}:reminder:{enterprise_id}:{what}:{until_ts}:{days}"


# --- customer service (services.support) -------------------------------------------------


def support_customer(user_id: int) -> str:
    return f"{NS}:support:customer:{user_id}"


def support_ticket(ticket_id: str) -> str:
    return f"{NS}:support:ticket:{ticket_id}"


def support_queue() -> str:
    return f"{NS}:support:queue"


def support_user_tickets(user_id: int) -> str:
    return f"{NS}:support:user:{user_id}:tickets"


def support_transcript(ticket_id: str) -> str:
    return f"{NS}:support:transcript:{ticket_id}"


def support_topic(chat_id: int, thread_id: int) -> str:
    return f"{NS}:support:topic:{chat_id}:{thread_id}"


def support_topic_lock(user_id: int) -> str:
    return f"{NS}:support:topic-lock:{user_id}"


def support_link(chat_id: int, message_id: int) -> str:
    return f"{NS}:support:link:{chat_id}:{message_id}"


def support_flood(user_id: int, window: int) -> str:
    return f"{NS}:support:flood:{user_id}:{window}"


def support_agent(agent_id: int) -> str:
    return f"{NS}:support:agent:{agent_id}"


def support_agents() -> str:
    return f"{NS}:support:agents"


def support_quote(order_id: str) -> str:
    return f"{NS}:support:quote:{order_id}"


def support_quotes() -> str:
    return f"{NS}:support:quotes"


def support_quote_proposal(proposal_id: str) -> str:
    return f"{NS}:support:quote-proposal:{proposal_id}"


def support_invoice(order_id: str) -> str:
    return f"{NS}:support:invoice:{order_id}"


def webhook(bot_id: int) -> str:
    """A fingerprint of the webhook registered for the bot (url, secret, update types)."""
    return f"{NS}:webhook:{bot_id}"
