//! Microsoft SNDS (Smart Network Data Services) automated data access: Outlook.com's verdict
//! on each sending IP ([`check`]), read from its two CSV files ([`parse`]).

pub mod check;
pub mod parse;
