//! The SSL Certificates API 2019-12-05 (tencent-cloud-more.md §3.3): uploaded certificates
//! with their tags, listed and deleted; and CLB's DescribeLoadBalancerListByCertId, which
//! reads which CLBs bind a certificate. The private key is checked for shape and dropped:
//! it is never stored, echoed in an error, or kept in the call log.

use rand::Rng;
use serde_json::{json, Value};

use super::clb::{Ctx, Outcome};
use super::model::{api_time_now, lb_json, SimState};
use super::params::{ApiError, ApiResult, Obj};

pub const SSL_VERSION: &str = "2019-12-05";

/// The request field holding the private key: blanked in the call log.
pub const PRIVATE_KEY_FIELD: &str = "CertificatePrivateKey";

pub fn is_ssl_action(action: &str) -> bool {
    [
        "UploadCertificate",
        "DescribeCertificates",
        "DeleteCertificate",
    ]
    .contains(&action)
}

/// One uploaded certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct SslCert {
    pub id: String,
    pub alias: String,
    pub cert_type: String,
    pub public_key: String,
    pub tags: Vec<(String, String)>,
    pub insert_time: String,
}

impl SslCert {
    pub fn json(&self) -> Value {
        let tags: Vec<Value> = self
            .tags
            .iter()
            .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
            .collect();
        json!({
            "CertificateId": self.id,
            "Alias": self.alias,
            "CertificateType": self.cert_type,
            "From": "upload",
            "Status": 1,
            "StatusName": "issued",
            "Domain": "",
            "InsertTime": self.insert_time,
            "ProjectId": "0",
            "Deployable": true,
            "Tags": tags,
        })
    }
}

pub(crate) fn dispatch(s: &mut SimState, ctx: &Ctx, action: &str, p: Obj) -> ApiResult<Outcome> {
    match action {
        "UploadCertificate" => upload(s, p),
        "DescribeCertificates" => describe(s, p),
        "DeleteCertificate" => delete(s, ctx, p),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action `{other}` does not exist"),
        )),
    }
}

fn tags_of(p: &Obj, name: &str) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (path, m) in p.objs(name, 50)?.unwrap_or_default() {
        let t = Obj::new(m, &path);
        t.only(&["TagKey", "TagValue"])?;
        let key = t.req_str("TagKey")?;
        let value = t.str("TagValue")?.unwrap_or_default();
        super::tag::check_tag(&key, &value)?;
        out.push((key, value));
    }
    Ok(out)
}

fn new_cert_id(s: &mut SimState) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..8)
        .map(|_| ALPHABET[s.rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn upload(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "CertificatePublicKey",
        PRIVATE_KEY_FIELD,
        "CertificateType",
        "Alias",
        "ProjectId",
        "CertificateUse",
        "Tags",
        "Repeatable",
        "KeyPassword",
    ])?;
    let public_key = p.req_str("CertificatePublicKey")?;
    let cert_type = p.str("CertificateType")?.unwrap_or_else(|| "SVR".into());
    if cert_type != "SVR" && cert_type != "CA" {
        return Err(p.invalid_value("CertificateType", "must be SVR or CA"));
    }
    if !public_key.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ApiError::new(
            "FailedOperation.CertificateParseError",
            "the certificate could not be parsed",
        ));
    }
    // Only whether a key is there and looks like PEM; never its bytes in an answer.
    let key_ok = match p.str(PRIVATE_KEY_FIELD)? {
        Some(k) => k.contains("-----BEGIN") && k.contains("PRIVATE KEY-----"),
        None => false,
    };
    if cert_type == "SVR" && !key_ok {
        return Err(ApiError::new(
            "FailedOperation.CertificateMatchError",
            "the private key is missing or does not match the certificate",
        ));
    }
    let tags = tags_of(&p, "Tags")?;
    let repeatable = p.bool("Repeatable")?.unwrap_or(true);
    if !repeatable {
        if let Some(existing) = s
            .certificates
            .iter()
            .find(|c| c.public_key == public_key && c.cert_type == cert_type)
        {
            // UNVERIFIED (tencent-cloud-more.md §3.3) whether CertificateId is empty then.
            return Ok(Outcome::new(
                json!({"CertificateId": "", "RepeatCertId": existing.id}),
                vec![],
            ));
        }
    }
    let id = new_cert_id(s);
    s.certificates.push(SslCert {
        id: id.clone(),
        alias: p.str("Alias")?.unwrap_or_default(),
        cert_type,
        public_key,
        tags,
        insert_time: api_time_now(),
    });
    Ok(Outcome::new(
        json!({"CertificateId": id, "RepeatCertId": ""}),
        vec![],
    ))
}

fn describe(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "Offset",
        "Limit",
        "SearchKey",
        "CertificateType",
        "ProjectId",
        "ExpirationSort",
        "CertificateStatus",
        "Deployable",
        "Upload",
        "Renew",
        "FilterSource",
        "IsSM",
        "FilterExpiring",
        "Hostable",
        "Tags",
        "IsPendingIssue",
        "CertIds",
        "ServiceId",
    ])?;
    let offset = p.int_in("Offset", 0, i64::MAX)?.unwrap_or(0) as usize;
    let limit = p.int_in("Limit", 1, 1000)?.unwrap_or(10) as usize;
    let tags = tags_of(&p, "Tags")?;
    let ids = p.strs("CertIds", 100)?;
    let search = p.str("SearchKey")?;
    let kind = p.str("CertificateType")?;
    let matching: Vec<&super::ssl::SslCert> = s
        .certificates
        .iter()
        .filter(|c| tags.iter().all(|t| c.tags.contains(t)))
        .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
        .filter(|c| kind.as_ref().is_none_or(|k| &c.cert_type == k))
        .filter(|c| {
            search
                .as_ref()
                .is_none_or(|k| c.id.contains(k.as_str()) || c.alias.contains(k.as_str()))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| c.json())
        .collect();
    Ok(Outcome::new(
        json!({"TotalCount": matching.len(), "Certificates": page}),
        vec![],
    ))
}

fn delete(s: &mut SimState, _ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["CertificateId", "IsCheckResource"])?;
    let id = p.req_str("CertificateId")?;
    let check = p.bool("IsCheckResource")?.unwrap_or(false);
    let Some(at) = s.certificates.iter().position(|c| c.id == id) else {
        return Err(ApiError::new(
            "FailedOperation.CertificateNotFound",
            format!("certificate {id} does not exist"),
        ));
    };
    // The real resource check is an async task; here it answers at once.
    if check && !bound_load_balancers(s, &id).is_empty() {
        return Err(ApiError::new(
            "FailedOperation.BoundResources",
            format!("certificate {id} is bound to cloud resources"),
        ));
    }
    s.certificates.remove(at);
    Ok(Outcome::new(
        json!({"DeleteResult": true, "TaskId": Value::Null}),
        vec![],
    ))
}

/// Ids of the CLBs whose listeners or rules bind `cert_id` (as server or CA certificate).
pub fn bound_load_balancers(s: &SimState, cert_id: &str) -> Vec<String> {
    let uses = |c: &Option<super::model::Certificate>| {
        c.as_ref()
            .is_some_and(|c| c.cert_id == cert_id || c.cert_ca_id.as_deref() == Some(cert_id))
    };
    s.load_balancers
        .iter()
        .filter(|lb| {
            lb.listeners
                .iter()
                .any(|l| uses(&l.certificate) || l.rules.iter().any(|r| uses(&r.certificate)))
        })
        .map(|lb| lb.id.clone())
        .collect()
}

/// CLB `DescribeLoadBalancerListByCertId`: `CertSet[]{CertId, LoadBalancers[]}`, ≤ 20 ids.
pub(crate) fn list_by_cert_id(s: &SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["CertIds"])?;
    let ids = p.strs("CertIds", 20)?.ok_or_else(|| p.missing("CertIds"))?;
    let set: Vec<Value> = ids
        .iter()
        .map(|id| {
            let lbs: Vec<Value> = bound_load_balancers(s, id)
                .iter()
                .filter_map(|lb| s.load_balancers.iter().find(|x| &x.id == lb))
                .map(|lb| lb_json(lb, ctx.now))
                .collect();
            json!({"CertId": id, "LoadBalancers": lbs})
        })
        .collect();
    Ok(Outcome::new(json!({"CertSet": set}), vec![]))
}
