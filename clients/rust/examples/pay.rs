//! One-click payment: pay, wait for the result, deliver, finish.
//!
//! `cargo run -p scanbind-client --example pay -- order-42 49.00 HKD`

use std::time::Duration;

use scanbind_client::money::{Currency, Money};
use scanbind_client::{Client, PayRequest, Transport};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let order_id = args.next().unwrap_or_else(|| "order-42".into());
    let amount = args.next().unwrap_or_else(|| "49.00".into());
    let currency = Currency::from_code(&args.next().unwrap_or_else(|| "HKD".into()))?;
    let amount = Money::parse_major(&amount, currency)?;

    let client = Client::connect(Transport::Auto).await?;
    // The order id is the idempotency key: running this twice charges once.
    let payment = client
        .pay(&PayRequest::new(order_id, amount, "500 gems"))
        .await?;
    let outcome = tokio::time::timeout(Duration::from_secs(120), payment.wait()).await??;
    if outcome.succeeded() {
        // Send outcome.receipt to your backend to verify, deliver, then:
        payment.finish().await?;
        println!(
            "paid {amount}; receipt {}",
            outcome.receipt.unwrap_or_default()
        );
    } else {
        println!("not paid ({}): {:?}", outcome.state, outcome.error);
    }
    Ok(())
}
