//! At start: pick up payments whose result arrived while the app was not running.
//!
//! `cargo run -p scanbind-client --example restore`

use scanbind_client::{Client, PaymentState, Transport};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let client = Client::connect(Transport::Auto).await?;
    for payment in client.unfinished_payments().await? {
        let order = payment.order_id().await?;
        match payment.state().await? {
            PaymentState::Succeeded => {
                println!("delivering order {order}");
                payment.finish().await?;
            }
            // Pending or pending-unknown: keep waiting (payment.wait()) in the background;
            // never deliver, never report a failure yet.
            state => println!("order {order} is still {state}"),
        }
    }
    Ok(())
}
