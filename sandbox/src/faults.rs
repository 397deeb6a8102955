//! Fault injection: what the next N calls of an endpoint, or the next N notifications,
//! should suffer — plus the magic amounts of Alipay's legacy mock tool.
//!
//! Faults are armed with `POST /sandbox/v1/faults` and consumed one per call, in the order
//! they were armed. They live in memory only (a restart clears them).

use std::collections::VecDeque;
use std::sync::Mutex;

use scanbind_ams::money::Currency;
use scanbind_ams::money::wallet::amount_step;
use scanbind_ams::result::Endpoint;
use serde::{Deserialize, Serialize};

/// What to do to one AMS call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallFault {
    /// Answer `U` / `UNKNOWN_EXCEPTION`. With `processed: true` the call takes effect first
    /// (money moves, the answer is lost); by default it does not.
    UnknownException {
        /// Whether the call takes effect before the U answer.
        #[serde(default)]
        processed: bool,
    },
    /// pay only: answer `U` / `PAYMENT_IN_PROCESS`; the payment stays PROCESSING and
    /// becomes final (success, or failure with `fail_code`) on the inquiry after
    /// `after_inquiries` PROCESSING answers, or once the sandbox clock passes
    /// `after_seconds`, whichever comes first.
    InProcess {
        /// Final outcome: `SUCCESS` (default) or a failure code such as `USER_BALANCE_NOT_ENOUGH`.
        #[serde(default = "default_final")]
        outcome: String,
        /// PROCESSING answers before the final one (default 1).
        #[serde(default = "default_one")]
        after_inquiries: u32,
        /// Sandbox-clock seconds until final (default 60).
        #[serde(default = "default_sixty")]
        after_seconds: u64,
    },
    /// Answer with this HTTP status (default 500) and a plain-text body. With
    /// `processed: true` the call takes effect first.
    HttpError {
        /// The HTTP status (500–599).
        #[serde(default = "default_500")]
        status: u16,
        /// Whether the call takes effect first.
        #[serde(default)]
        processed: bool,
    },
    /// Never answer: hold the connection open until the client gives up (or the sandbox
    /// stops). With `processed: true` (the default) the call takes effect first.
    Hang {
        /// Whether the call takes effect first.
        #[serde(default = "default_true")]
        processed: bool,
    },
    /// Answer normally (the call takes effect) but with a `signature` header that does
    /// not verify.
    BadSignature,
}

/// What to do to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotifyFault {
    /// Never send it (logged as dropped).
    Drop,
    /// Send it twice, as two independent deliveries.
    Duplicate,
    /// Send it this many real milliseconds late.
    Delay {
        /// Delay in milliseconds (not scaled).
        ms: u64,
    },
    /// Hold it back and send it right after the next notification.
    Reorder,
}

fn default_final() -> String {
    "SUCCESS".into()
}
fn default_one() -> u32 {
    1
}
fn default_sixty() -> u64 {
    60
}
fn default_500() -> u16 {
    500
}
fn default_true() -> bool {
    true
}

/// The endpoint names used by the control API (`pay`, `inquiryPayment`, ...: the last
/// path segment).
pub fn endpoint_name(endpoint: Endpoint) -> &'static str {
    let path = endpoint.path();
    path.rsplit('/').next().unwrap_or(path)
}

/// Looks an endpoint up by its control-API name.
pub fn endpoint_by_name(name: &str) -> Option<Endpoint> {
    Endpoint::ALL
        .into_iter()
        .find(|e| endpoint_name(*e).eq_ignore_ascii_case(name))
}

/// One armed fault and how many more times it fires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Armed<F> {
    /// The endpoint name, or `notifications`.
    pub target: String,
    /// The fault.
    pub fault: F,
    /// Remaining calls.
    pub remaining: u32,
    /// Matching calls still to let through untouched before the fault fires (so a test
    /// can fault, say, the third part of a combined checkout).
    #[serde(default)]
    pub skip: u32,
}

/// Armed faults. A std mutex: consulted once per call, never across an `.await`.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<FaultLists>,
}

#[derive(Debug, Default)]
struct FaultLists {
    calls: VecDeque<Armed<CallFault>>,
    notifications: VecDeque<Armed<NotifyFault>>,
}

impl Faults {
    /// Arms `fault` for the next `count` calls of `endpoint`.
    pub fn arm_call(&self, endpoint: Endpoint, fault: CallFault, count: u32) {
        self.arm_call_after(endpoint, fault, count, 0);
    }

    /// Arms `fault` for `count` calls of `endpoint` after letting `skip` calls through.
    pub fn arm_call_after(&self, endpoint: Endpoint, fault: CallFault, count: u32, skip: u32) {
        let mut lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lists.calls.push_back(Armed {
            target: endpoint_name(endpoint).to_owned(),
            fault,
            remaining: count,
            skip,
        });
    }

    /// Arms `fault` for the next `count` notifications.
    pub fn arm_notification(&self, fault: NotifyFault, count: u32) {
        let mut lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lists.notifications.push_back(Armed {
            target: "notifications".into(),
            fault,
            remaining: count,
            skip: 0,
        });
    }

    /// Takes the fault for one call of `endpoint`, if one is armed.
    pub fn take_call(&self, endpoint: Endpoint) -> Option<CallFault> {
        let name = endpoint_name(endpoint);
        let mut lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let index = lists.calls.iter().position(|a| a.target == name)?;
        take(&mut lists.calls, index)
    }

    /// Takes the fault for one notification, if one is armed.
    pub fn take_notification(&self) -> Option<NotifyFault> {
        let mut lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if lists.notifications.is_empty() {
            return None;
        }
        take(&mut lists.notifications, 0)
    }

    /// Everything armed, as JSON for `GET /sandbox/v1/faults`.
    pub fn list(&self) -> serde_json::Value {
        let lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "calls": lists.calls,
            "notifications": lists.notifications,
        })
    }

    /// Disarms everything.
    pub fn clear(&self) {
        let mut lists = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lists.calls.clear();
        lists.notifications.clear();
    }
}

fn take<F: Clone>(list: &mut VecDeque<Armed<F>>, index: usize) -> Option<F> {
    let armed = list.get_mut(index)?;
    if armed.skip > 0 {
        armed.skip -= 1;
        return None;
    }
    let fault = armed.fault.clone();
    armed.remaining = armed.remaining.saturating_sub(1);
    if armed.remaining == 0 {
        list.remove(index);
    }
    Some(fault)
}

/// The scenarios selected by a payment amount's minor-unit value, as in Alipay's legacy
/// mock tool (documented in `docs/sandbox.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// 9901: `U` / `UNKNOWN_EXCEPTION`, nothing recorded.
    UnknownException,
    /// 9902: no answer (the connection hangs), nothing recorded.
    Hang,
    /// 9903: `PAYMENT_IN_PROCESS`, then SUCCESS on the second inquiry.
    InProcessThenSuccess,
    /// 9904: `PAYMENT_IN_PROCESS`, then FAIL on the second inquiry.
    InProcessThenFail,
    /// 9905: `USER_BALANCE_NOT_ENOUGH`.
    BalanceNotEnough,
    /// 9906: `RISK_REJECT`.
    RiskReject,
    /// 9907: `INVALID_ACCESS_TOKEN`.
    InvalidAccessToken,
    /// 9908: `USER_AMOUNT_EXCEED_LIMIT`.
    AmountExceedLimit,
}

impl Magic {
    /// The scenario for a pay amount in minor units of `currency`, if it is magic. In a
    /// currency where Alipay takes only multiples of a step (IDR: amounts end in 00,
    /// `scanbind_money::wallet::amount_step`), the magic number is followed by the
    /// step's zeros: `990500` IDR is 9905.
    pub fn for_amount(currency: Currency, minor: i64) -> Option<Magic> {
        let step = amount_step(currency);
        if minor % step != 0 {
            return None;
        }
        Some(match minor / step {
            9901 => Magic::UnknownException,
            9902 => Magic::Hang,
            9903 => Magic::InProcessThenSuccess,
            9904 => Magic::InProcessThenFail,
            9905 => Magic::BalanceNotEnough,
            9906 => Magic::RiskReject,
            9907 => Magic::InvalidAccessToken,
            9908 => Magic::AmountExceedLimit,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_count_times_in_order() {
        let f = Faults::default();
        f.arm_call(Endpoint::Pay, CallFault::BadSignature, 2);
        f.arm_call(
            Endpoint::Pay,
            CallFault::UnknownException { processed: false },
            1,
        );
        assert_eq!(f.take_call(Endpoint::Refund), None);
        assert_eq!(f.take_call(Endpoint::Pay), Some(CallFault::BadSignature));
        assert_eq!(f.take_call(Endpoint::Pay), Some(CallFault::BadSignature));
        assert_eq!(
            f.take_call(Endpoint::Pay),
            Some(CallFault::UnknownException { processed: false })
        );
        assert_eq!(f.take_call(Endpoint::Pay), None);
    }

    #[test]
    fn names_and_json() {
        assert_eq!(endpoint_name(Endpoint::InquiryPayment), "inquiryPayment");
        assert_eq!(endpoint_by_name("pay"), Some(Endpoint::Pay));
        assert_eq!(
            endpoint_by_name("inquiryDeclarationRequests"),
            Some(Endpoint::InquiryDeclaration)
        );
        let f: CallFault = serde_json::from_str(r#"{"kind":"in_process"}"#).unwrap();
        assert_eq!(
            f,
            CallFault::InProcess {
                outcome: "SUCCESS".into(),
                after_inquiries: 1,
                after_seconds: 60
            }
        );
        let n: NotifyFault = serde_json::from_str(r#"{"kind":"delay","ms":5}"#).unwrap();
        assert_eq!(n, NotifyFault::Delay { ms: 5 });
    }
}
