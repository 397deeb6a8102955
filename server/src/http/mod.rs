//! The HTTP layer, on top of [`crate::domain`]: the router, the device API (`/v1`), the
//! notification intake (`/ams/notify/*`), the back office (`/admin/v1`), the OpenAPI
//! document, health and metrics endpoints.

pub mod admin;
pub mod api;
pub mod auth;
pub mod openapi;

pub use api::router;
