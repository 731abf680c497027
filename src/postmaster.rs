//! Google Postmaster Tools API v2: the domains' daily statistics and compliance status, read
//! with a service account ([`crate::oauth2::jwt`]) or an OAuth2 refresh token ([`check`]), from
//! requests and responses built and read in [`api`].

pub mod api;
pub mod check;
