-- Issue 25 item 1: an unfinished checkout keeps the binding's sealed token blob (as the
-- device sent it: AEAD-sealed under the server's sealing key and bound to the device and
-- binding, never a clear token), so that a restarted server, or another replica, can
-- open it and send the parts not sent yet. Cleared when the checkout becomes final.
ALTER TABLE checkouts ADD COLUMN sealed_tokens TEXT;
