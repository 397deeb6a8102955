//! The proxies against a stand-in daemon on a peer-to-peer connection: typed records,
//! state strings and error names survive the wire in both directions.

use std::collections::HashMap;
use std::time::Duration;

use scanbind_ipc::types::{BindingState, Connectivity, PaymentState, keys};
use scanbind_ipc::{BindingSummary, Daemon1Proxy, Error, Payment1Proxy, PaymentSummary, paths};
use zbus::{
    Connection, Guid, interface, zvariant::ObjectPath, zvariant::OwnedValue, zvariant::Value,
};

/// A stand-in for the daemon's `Daemon1` object: canned answers, real wire types.
struct FakeDaemon;

#[interface(name = "io.scanbind.Daemon1")]
impl FakeDaemon {
    async fn get_status(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> HashMap<String, OwnedValue> {
        let mut m = HashMap::new();
        m.insert(
            keys::status::CONNECTIVITY.to_owned(),
            OwnedValue::from(zbus::zvariant::Str::from("online")),
        );
        m
    }

    async fn list_bindings(&self, _options: HashMap<String, OwnedValue>) -> Vec<BindingSummary> {
        vec![BindingSummary {
            binding: paths::binding_path("GCASH", "bnd_1"),
            wallet: "GCASH".into(),
            state: BindingState::Bound,
            label: "09** *** 1234".into(),
        }]
    }

    #[zbus(out_args("payment"))]
    async fn pay(
        &self,
        order_id: String,
        amount_minor: i64,
        currency: String,
        _description: String,
        options: HashMap<String, OwnedValue>,
    ) -> Result<zbus::zvariant::OwnedObjectPath, Error> {
        if let Some(k) = options.keys().find(|k| k.as_str() != keys::pay::BINDING) {
            return Err(Error::UnknownOption(format!("unknown option {k:?}")));
        }
        if amount_minor <= 0 {
            return Err(Error::InvalidAmount(format!(
                "{amount_minor} is not positive"
            )));
        }
        if currency != "HKD" {
            return Err(Error::UnknownCurrency(currency));
        }
        let _ = order_id;
        Ok(paths::payment_path(7))
    }

    async fn list_payments(&self, _options: HashMap<String, OwnedValue>) -> Vec<PaymentSummary> {
        vec![PaymentSummary {
            payment: paths::payment_path(7),
            order_id: "o-1".into(),
            amount_minor: 1234,
            currency: "HKD".into(),
            delivered: false,
            state: PaymentState::PendingUnknown,
            created_at: 1_700_000_000,
        }]
    }

    #[zbus(property)]
    async fn connectivity(&self) -> String {
        Connectivity::Online.as_str().to_owned()
    }
}

/// A stand-in `Payment1`.
struct FakePayment;

#[interface(name = "io.scanbind.Payment1")]
impl FakePayment {
    #[zbus(property)]
    async fn state(&self) -> String {
        PaymentState::Succeeded.as_str().to_owned()
    }

    #[zbus(property)]
    async fn receipt(&self) -> String {
        "header.claims.signature".to_owned()
    }

    #[zbus(property)]
    async fn last_error(&self) -> scanbind_ipc::ErrorInfo {
        scanbind_ipc::ErrorInfo::default()
    }
}

async fn connect() -> (Connection, Connection) {
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let server = tokio::spawn(async move {
        zbus::connection::Builder::unix_stream(a)
            .server(Guid::generate())
            .unwrap()
            .p2p()
            .serve_at(scanbind_ipc::DAEMON_PATH, FakeDaemon)
            .unwrap()
            .serve_at(paths::payment_path(7), FakePayment)
            .unwrap()
            .build()
            .await
            .unwrap()
    });
    let client = zbus::connection::Builder::unix_stream(b)
        .p2p()
        .build()
        .await
        .unwrap();
    (server.await.unwrap(), client)
}

#[tokio::test(flavor = "current_thread")]
async fn proxies_speak_the_contract() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (_server, client) = connect().await;
        let daemon = Daemon1Proxy::new(&client).await.unwrap();

        let status = daemon.get_status(HashMap::new()).await.unwrap();
        let conn: String = status[keys::status::CONNECTIVITY]
            .try_clone()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(conn.parse::<Connectivity>(), Ok(Connectivity::Online));
        assert_eq!(daemon.connectivity().await.unwrap(), "online");

        let bindings = daemon.list_bindings(HashMap::new()).await.unwrap();
        assert_eq!(bindings[0].state, BindingState::Bound);
        assert_eq!(
            bindings[0].binding.as_str(),
            "/io/scanbind/Daemon1/binding/gcash_bnd_1"
        );

        let payment = daemon
            .pay("o-1", 1234, "HKD", "gems", HashMap::new())
            .await
            .unwrap();
        assert_eq!(payment.as_str(), "/io/scanbind/Daemon1/payment/p7");

        // Domain errors arrive as their own variants.
        let err = daemon
            .pay("o-2", -5, "HKD", "gems", HashMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidAmount(_)), "{err:?}");
        let err = daemon
            .pay("o-2", 5, "XXX", "gems", HashMap::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownCurrency(ref c) if c == "XXX"),
            "{err:?}"
        );
        let mut options = HashMap::new();
        options.insert("colour", Value::from("red"));
        let err = daemon
            .pay("o-2", 5, "HKD", "gems", options)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownOption(_)), "{err:?}");
        // A method the stand-in lacks: the zbus passthrough variant.
        let binding = ObjectPath::try_from("/io/scanbind/Daemon1/binding/gcash_bnd_1").unwrap();
        let err = daemon.unbind(&binding, HashMap::new()).await.unwrap_err();
        assert!(matches!(err, Error::ZBus(_)), "{err:?}");

        let payments = daemon.list_payments(HashMap::new()).await.unwrap();
        assert_eq!(payments[0].state, PaymentState::PendingUnknown);
        assert_eq!(payments[0].amount_minor, 1234);

        let p = Payment1Proxy::builder(&client)
            .path(payment)
            .unwrap()
            .build()
            .await
            .unwrap();
        assert_eq!(
            p.state().await.unwrap().parse::<PaymentState>(),
            Ok(PaymentState::Succeeded)
        );
        assert_eq!(p.receipt().await.unwrap(), "header.claims.signature");
        assert_eq!(
            p.last_error().await.unwrap(),
            scanbind_ipc::ErrorInfo::default()
        );
    })
    .await
    .expect("round trip within 30 s");
}
