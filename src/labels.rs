//! Closed sets of label values: [`label_enum!`] declares an enum whose variants are the values
//! of one metric label, with `ALL` (every variant), `NAMES` (every label value) and `as_str`,
//! so a check's reasons, results and stages are written once and the metrics can create every
//! series of the set from the first scrape.

/// Declares a label enum:
///
/// ```
/// deliverability_exporter::label_enum! {
///     /// Why the check failed.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Reason {
///         NoRecord = "no_record",
///         DnsError = "dns_error",
///     }
/// }
/// assert_eq!(Reason::NoRecord.as_str(), "no_record");
/// assert_eq!(Reason::NAMES, ["no_record", "dns_error"]);
/// assert_eq!(Reason::ALL.len(), 2);
/// ```
#[macro_export]
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every label value, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }
    };
}
