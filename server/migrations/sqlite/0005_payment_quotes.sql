-- A payment priced in another currency than the wallet's (issue 24, combined payment
-- across currencies): what the wallet paid (Alipay's actualPaymentAmount) and at which
-- quote (paymentQuote.quoteCurrencyPair / quotePrice, decimal text). Set once, from the
-- pay or inquiryPayment answer that reports the success; NULL for same-currency payments.
ALTER TABLE payments ADD COLUMN paid_currency TEXT;
ALTER TABLE payments ADD COLUMN paid_amount BIGINT;
ALTER TABLE payments ADD COLUMN quote_pair TEXT;
ALTER TABLE payments ADD COLUMN quote_price TEXT;
