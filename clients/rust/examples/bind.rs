//! Bind a wallet: show the QR code's text and match code, wait for the phone.
//!
//! `cargo run -p scanbind-client --example bind -- ALIPAY_HK`

use std::time::Duration;

use scanbind_client::{BindOptions, BindingState, Client, Transport};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let wallet = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ALIPAY_HK".into());
    let client = Client::connect(Transport::Auto).await?;
    let binding = client.bind(&wallet, BindOptions::default()).await?;
    // Draw binding.qr_matrix() (or qr_png / qr_svg) in your UI, with the match code.
    println!("scan: {}", binding.code_value().await?);
    println!("match code: {}", binding.match_code().await?);
    let outcome = tokio::time::timeout(Duration::from_secs(15 * 60), binding.wait()).await??;
    match outcome.state {
        BindingState::Bound => println!("bound: {}", binding.label().await?),
        other => println!("not bound ({other}): {:?}", outcome.error),
    }
    Ok(())
}
