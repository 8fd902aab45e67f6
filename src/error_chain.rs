//! One-line error text with every cause: reqwest's and hyper's Display hide the cause
//! ("error sending request"), which is the part an operator needs.

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
