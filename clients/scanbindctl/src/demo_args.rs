//! The options of the demo, `scanbindctl demo` and `scanbind-demo` alike: `scanbindctl`
//! parses them (so `scanbindctl demo --help` documents them and bad flags are refused
//! there) and hands them to the demo program as [`DemoArgs::to_args`].

use std::ffi::OsString;
use std::net::SocketAddr;

/// Options of `scanbindctl demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Wallet to bind (customerBelongsTo), e.g. ALIPAY_HK, GCASH, DANA.
    #[arg(long, default_value = "ALIPAY_HK")]
    pub wallet: String,
    /// Amount of the one-click payment, in major units of the wallet's currency.
    #[arg(long, default_value = "49.00")]
    pub amount: String,
    /// Wait for a real phone to scan the QR code instead of simulating the scan.
    #[arg(long, alias = "phone")]
    pub interactive: bool,
    /// Address the embedded sandbox listens on (0.0.0.0:PORT with --interactive, so a
    /// phone on the LAN can reach it).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Origin the QR points at, e.g. http://192.168.1.20:8100 for a phone on the LAN.
    #[arg(long)]
    pub public_url: Option<String>,
    /// How long to wait for the phone with --interactive, in seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub phone_timeout: u64,
}

impl DemoArgs {
    /// The same options as command-line arguments (what `scanbindctl demo` passes on).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            // `=`: a value such as -5 must not read as a flag.
            format!("--wallet={}", self.wallet).into(),
            format!("--amount={}", self.amount).into(),
            "--phone-timeout".into(),
            self.phone_timeout.to_string().into(),
        ];
        if self.interactive {
            args.push("--interactive".into());
        }
        if let Some(listen) = self.listen {
            args.push("--listen".into());
            args.push(listen.to_string().into());
        }
        if let Some(url) = &self.public_url {
            args.push(format!("--public-url={url}").into());
        }
        args
    }
}
