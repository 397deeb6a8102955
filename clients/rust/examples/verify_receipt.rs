//! On the app's backend: verify a receipt against the merchant server's keys.
//!
//! `cargo run -p scanbind-client --example verify_receipt -- SERVER_URL RECEIPT ORDER_ID 49.00 HKD`

use scanbind_client::ReceiptVerifier;
use scanbind_client::money::{Currency, Money};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, receipt, order_id, amount, currency] = args.as_slice() else {
        anyhow::bail!("usage: verify_receipt SERVER_URL RECEIPT ORDER_ID AMOUNT CURRENCY");
    };
    let amount = Money::parse_major(amount, Currency::from_code(currency)?)?;
    // Fetch once and cache; refetch when a receipt names a key id you do not have.
    let verifier = ReceiptVerifier::fetch(server).await?;
    let claims = verifier.verify_payment(receipt, order_id, amount)?;
    println!(
        "genuine: order {} paid by device {} (app {})",
        claims.app_order_id, claims.device_id, claims.app_id
    );
    Ok(())
}
