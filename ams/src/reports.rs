//! The layout of Alipay's settlement and reconciliation reports (Antom's "Settle and
//! reconcile" pages: docs.antom.com/ac/reconcile/field_summary, settlement_details,
//! settlement_summary, transaction_details): a header line of parameter names, one row
//! per record, and a last line [`END_LINE`]. Shared by the sandbox, which writes them,
//! and `scanbind-server reconcile`, which reads them (by name, in any order).

/// The last line of every report.
pub const END_LINE: &str = "<END>";

/// Columns of the transaction details report, `transactionDetails_<CUR>_<YYYYMMDD>.csv`:
/// first those in the order the report's page lists them, then the rest of the fields the
/// field summary marks for this report, in its order (see `docs/sandbox.md`).
pub const TRANSACTION_DETAILS_COLUMNS: &[&str] = &[
    "customerId",
    "PSP",
    "ARN",
    "referenceMerchantId",
    "referenceStoreId",
    "transactionId",
    "transactionRequestId",
    "settlementBatchId",
    "transactionType",
    "originalTransactionRequestId",
    "referenceTransactionId",
    "orderDescription",
    "paymentMethodType",
    "wallet",
    "status",
    "transactionCreationTime",
    "transactionUpdateTime",
    "transactionCompletionTime",
    "productCode",
    "transactionAmountValue",
    "transactionCurrency",
    "convertedTransactionAmountValue",
    "convertedCurrency",
    "settlementAmountValue",
    "settlementCurrency",
    "quoteCurrencyPair",
    "quotePrice",
    "paymentMethodFeeAmountValue",
    "paymentMethodFeeCurrency",
    "taxFeeAmountValue",
    "taxFeeCurrency",
];

/// Columns of the settlement details report, `settlementDetails_<CUR>_<YYYYMMDD>.csv`
/// (ordered as [`TRANSACTION_DETAILS_COLUMNS`]).
pub const SETTLEMENT_DETAILS_COLUMNS: &[&str] = &[
    "settlementBatchId",
    "customerId",
    "PSP",
    "ARN",
    "referenceMerchantId",
    "referenceStoreId",
    "transactionId",
    "transactionRequestId",
    "referenceTransactionId",
    "transactionType",
    "originalTransactionRequestId",
    "paymentMethodType",
    "wallet",
    "transactionCreationTime",
    "transactionUpdateTime",
    "transactionCompletionTime",
    "settlementInitiatedDate",
    "productCode",
    "transactionAmountValue",
    "transactionCurrency",
    "convertedTransactionAmountValue",
    "convertedCurrency",
    "settlementAmountValue",
    "settlementCurrency",
    "quoteCurrencyPair",
    "quotePrice",
    "paymentMethodFeeAmountValue",
    "paymentMethodFeeCurrency",
    "taxFeeAmountValue",
    "taxFeeCurrency",
];

/// Columns of the settlement summary report, `settlementSummary_<CUR>_<YYYYMMDD>.csv`, in
/// the order of the report's page.
pub const SETTLEMENT_SUMMARY_COLUMNS: &[&str] = &[
    "settlementBatchId",
    "customerId",
    "PSP",
    "summaryType",
    "settlementInitiatedDate",
    "count",
    "settlementAmountValue",
    "settlementCurrency",
    "paymentMethodFeeAmountValue",
    "paymentMethodFeeCurrency",
    "taxFeeAmountValue",
    "taxFeeCurrency",
];
