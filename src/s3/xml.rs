//! The XML answers of S3 that etcdadm reads: ListObjectsV2 pages (error documents:
//! `aws_api::error_document`).
//! Unknown elements are ignored.

use serde::Deserialize;

pub(super) struct ListPage {
    pub objects: Vec<super::ObjectInfo>,
    pub truncated: bool,
    pub next_token: Option<String>,
}

pub(super) fn list_objects(text: &str) -> Result<ListPage, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListBucketResult {
        #[serde(default)]
        contents: Vec<Contents>,
        #[serde(default)]
        is_truncated: bool,
        next_continuation_token: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Contents {
        key: String,
        #[serde(default)]
        size: u64,
    }
    let r: ListBucketResult = quick_xml::de::from_str(text)
        .map_err(|e| format!("not a ListBucketResult document: {e}"))?;
    Ok(ListPage {
        objects: r
            .contents
            .into_iter()
            .map(|c| super::ObjectInfo { key: c.key, size: c.size })
            .collect(),
        truncated: r.is_truncated,
        next_token: r.next_continuation_token.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    // The error document is parsed by the parser shared by every AWS client.
    use crate::aws_api::error_document as error;

    #[test]
    fn list_pages() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken><Contents><Key>p/m1-20260101T000000.000Z.db</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>p/a&amp;b</Key><Size>0</Size></Contents><CommonPrefixes><Prefix>p/sub/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let page = list_objects(xml).unwrap();
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("tok"));
        assert_eq!(page.objects.len(), 2);
        assert_eq!(
            (page.objects[0].key.as_str(), page.objects[0].size),
            ("p/m1-20260101T000000.000Z.db", 42)
        );
        assert_eq!(page.objects[1].key, "p/a&b");
        let empty =
            list_objects("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
                .unwrap();
        assert!(empty.objects.is_empty() && !empty.truncated);
        assert!(list_objects("<html>").is_err());
    }

    #[test]
    fn errors() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>nobucket</BucketName><RequestId>G0</RequestId></Error>"#;
        assert_eq!(
            error(xml),
            Some(("NoSuchBucket".into(), "The specified bucket does not exist".into()))
        );
        assert_eq!(error("<html><body>502 Bad Gateway</body></html>"), None);
        assert_eq!(error(""), None);
    }
}
