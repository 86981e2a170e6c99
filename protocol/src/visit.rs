//! One pass over a message without a tree: a serde visitor reads the values it wants and answers
//! every other kind of value the same way, consuming it unparsed (`visit_others!`).

/// Implement the listed `Visitor` methods (`visit_bool`, `visit_i64`, `visit_u64`, `visit_f64`,
/// `visit_str`, `visit_unit`, `visit_seq`, `visit_map`) as: consume the value, answer `$out`.
#[macro_export]
macro_rules! visit_others {
    ($out:expr; $($visit:ident),* $(,)?) => { $( $crate::visit_others!(@one $out; $visit); )* };
    (@one $out:expr; visit_bool) => { $crate::visit_others!(@scalar $out; visit_bool: bool); };
    (@one $out:expr; visit_i64) => { $crate::visit_others!(@scalar $out; visit_i64: i64); };
    (@one $out:expr; visit_u64) => { $crate::visit_others!(@scalar $out; visit_u64: u64); };
    (@one $out:expr; visit_f64) => { $crate::visit_others!(@scalar $out; visit_f64: f64); };
    (@one $out:expr; visit_str) => { $crate::visit_others!(@scalar $out; visit_str: &str); };
    (@one $out:expr; visit_unit) => {
        fn visit_unit<E: ::serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
    };
    (@one $out:expr; visit_seq) => {
        fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<::serde::de::IgnoredAny>()?.is_some() {}
            Ok($out)
        }
    };
    (@one $out:expr; visit_map) => {
        fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<::serde::de::IgnoredAny, ::serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok($out)
        }
    };
    (@scalar $out:expr; $visit:ident: $ty:ty) => {
        fn $visit<E: ::serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok($out)
        }
    };
}
