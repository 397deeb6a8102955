//! Property streams that cannot miss a change: subscribe to `PropertiesChanged`
//! first, then read the current value, then follow the signals.
//!
//! zbus's own `receive_*_changed` streams sit on a caching proxy and yield only once
//! the cache has been filled and then notified; under load a change could land
//! between the cache's initial `GetAll` and its subscription and the stream would
//! wait for the next one. These streams do the ordering themselves, on a proxy of
//! `org.freedesktop.DBus.Properties` without a cache.

use futures_util::StreamExt as _;
use futures_util::stream::{self, BoxStream};
use zbus::fdo::PropertiesProxy;
use zbus::names::InterfaceName;
use zbus::proxy::CacheProperties;
use zvariant::OwnedValue;

use crate::error::Result;

/// The values of `interface.property` on the object `proxy` points at: the current
/// value first, then each change, consecutive repeats dropped. Ends when the
/// connection closes.
pub(crate) async fn watch_property(
    proxy: &zbus::Proxy<'_>,
    property: &'static str,
) -> Result<BoxStream<'static, Result<OwnedValue>>> {
    let interface: InterfaceName<'static> = proxy.interface().to_owned();
    let props = PropertiesProxy::builder(proxy.connection())
        .destination(proxy.destination().to_owned())?
        .path(proxy.path().to_owned())?
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    // The subscription exists once this returns: a change after it is a signal.
    let changes = props.receive_properties_changed().await?;
    let current = props.get(interface.clone(), property).await?;

    let follow = {
        let props = props.clone();
        let interface = interface.clone();
        changes.filter_map(move |signal| {
            let props = props.clone();
            let interface = interface.clone();
            async move {
                let args = match signal.args() {
                    Ok(args) => args,
                    Err(e) => return Some(Err(e.into())),
                };
                if args.interface_name() != &interface {
                    return None;
                }
                if let Some(value) = args.changed_properties().get(property) {
                    return Some(
                        value
                            .try_to_owned()
                            .map_err(|e| zbus::Error::from(e).into()),
                    );
                }
                if args.invalidated_properties().contains(&property) {
                    return Some(props.get(interface, property).await.map_err(Into::into));
                }
                None
            }
        })
    };

    let mut last: Option<OwnedValue> = None;
    Ok(stream::once(async move { Ok(current) })
        .chain(follow)
        .filter_map(move |item| {
            let out = match item {
                Ok(value) if last.as_ref() == Some(&value) => None,
                Ok(value) => {
                    last = value.try_clone().ok();
                    Some(Ok(value))
                }
                Err(e) => Some(Err(e)),
            };
            std::future::ready(out)
        })
        .boxed())
}
