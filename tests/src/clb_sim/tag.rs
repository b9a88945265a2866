//! Tag API actions on CLBs, addressed by six-segment resource names
//! `qcs::clb:<region>:uin/<uin>:clb/<lb-id>`.

use serde_json::{json, Value};

use super::clb::{Ctx, Outcome};
use super::limits::*;
use super::model::{tags_json, SimState};
use super::params::{ApiError, ApiResult, Obj};

pub fn is_tag_action(action: &str) -> bool {
    [
        "TagResources",
        "UnTagResources",
        "GetResources",
        "DescribeResourcesByTags",
    ]
    .contains(&action)
}

/// Tag key/value rules of the Tag API (reserved prefixes, lengths).
pub(crate) fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterValue.TagKeyEmpty",
            "TagKey is empty",
        ));
    }
    if key.chars().count() > 127 {
        return Err(ApiError::new(
            "InvalidParameterValue.TagKeyLengthExceeded",
            "TagKey is longer than 127",
        ));
    }
    if value.chars().count() > 255 {
        return Err(ApiError::new(
            "InvalidParameterValue.TagValueLengthExceeded",
            "TagValue is longer than 255",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if ["qcloud", "tencent", "project"]
        .iter()
        .any(|r| lower.starts_with(r))
    {
        return Err(ApiError::new(
            "InvalidParameterValue.ReservedTagKey",
            format!("TagKey `{key}` uses a reserved prefix"),
        ));
    }
    Ok(())
}

/// The region and CLB id a six-segment name points at, if it is a CLB of this account.
fn parse_any_region(name: &str) -> ApiResult<Option<(String, String)>> {
    let bad = || {
        ApiError::new(
            "InvalidParameterValue.ResourceDescriptionError",
            format!("`{name}` is not a six-segment resource name"),
        )
    };
    let parts: Vec<&str> = name.split(':').collect();
    if parts.len() != 6 || parts[0] != "qcs" || !parts[1].is_empty() {
        return Err(bad());
    }
    let uin = parts[4].strip_prefix("uin/").ok_or_else(bad)?;
    let (prefix, id) = parts[5].split_once('/').ok_or_else(bad)?;
    if parts[2] != "clb" || prefix != "clb" || !(uin.is_empty() || uin == SIM_UIN) {
        return Ok(None);
    }
    Ok(Some((parts[3].to_string(), id.to_string())))
}

/// The CLB id a six-segment name points at, if it is a CLB of this region and account.
fn parse_resource(name: &str, region: &str) -> ApiResult<Option<String>> {
    Ok(parse_any_region(name)?
        .filter(|(r, _)| r == region)
        .map(|(_, id)| id))
}

/// The region a TagResources/UnTagResources call acts in: that of its first resource name
/// (the Tag API is global; a name of another region in the same call fails as not found).
pub(crate) fn acting_region(
    action: &str,
    params: &serde_json::Map<String, Value>,
) -> Option<String> {
    if !["TagResources", "UnTagResources"].contains(&action) {
        return None;
    }
    let first = params.get("ResourceList")?.as_array()?.first()?.as_str()?;
    parse_any_region(first).ok().flatten().map(|(r, _)| r)
}

/// One CLB as the global GetResources sees it.
pub(crate) struct TaggedClb {
    pub region: String,
    pub id: String,
    pub tags: Vec<(String, String)>,
}

impl TaggedClb {
    pub fn of(region: &str, s: &SimState) -> Vec<TaggedClb> {
        s.load_balancers
            .iter()
            .map(|lb| TaggedClb {
                region: region.to_string(),
                id: lb.id.clone(),
                tags: lb.tags.clone(),
            })
            .collect()
    }
}

fn resource_name(region: &str, id: &str) -> String {
    format!("qcs::clb:{region}:uin/{SIM_UIN}:clb/{id}")
}

pub(crate) fn dispatch(s: &mut SimState, ctx: &Ctx, action: &str, p: Obj) -> ApiResult<Outcome> {
    match action {
        "TagResources" => tag_resources(s, ctx, p),
        "UnTagResources" => untag_resources(s, ctx, p),
        "GetResources" => get_resources(&TaggedClb::of(&ctx.region, s), p),
        "DescribeResourcesByTags" => describe_resources_by_tags(s, ctx, p),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action `{other}` does not exist"),
        )),
    }
}

fn resources(p: &Obj) -> ApiResult<Vec<String>> {
    let r = p.strs("ResourceList", MAX_TAG_RESOURCES).map_err(|e| {
        if e.code == "LimitExceeded" {
            ApiError::new("LimitExceeded.ResourceNumPerRequest", e.message)
        } else {
            e
        }
    })?;
    match r {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(p.missing("ResourceList")),
    }
}

fn failed(resource: &str) -> Value {
    json!({"Resource": resource, "Code": TAG_RESOURCE_NOT_FOUND_CODE, "Message": "resource not found"})
}

fn tag_resources(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["ResourceList", "Tags"])?;
    let list = resources(&p)?;
    let items = p
        .objs("Tags", MAX_TAGS_PER_REQUEST)
        .map_err(|e| {
            if e.code == "LimitExceeded" {
                ApiError::new("LimitExceeded.TagNumPerRequest", e.message)
            } else {
                e
            }
        })?
        .ok_or_else(|| p.missing("Tags"))?;
    let mut tags: Vec<(String, String)> = Vec::new();
    for (path, m) in &items {
        let t = Obj::new(m, path);
        t.only(&["TagKey", "TagValue"])?;
        let k = t.req_str("TagKey")?;
        let v = t.req_str("TagValue")?;
        check_tag(&k, &v)?;
        tags.retain(|(ek, _)| *ek != k);
        tags.push((k, v));
    }
    let max = s.limits.tags_per_resource;
    let mut targets = Vec::new();
    let mut fails = Vec::new();
    for r in &list {
        match parse_resource(r, &ctx.region)? {
            Some(id) if s.lb(&id).is_some() => targets.push(id),
            _ => fails.push(failed(r)),
        }
    }
    for id in &targets {
        if let Some(lb) = s.lb(id) {
            let added = tags
                .iter()
                .filter(|(k, _)| !lb.tags.iter().any(|(ek, _)| ek == k))
                .count();
            if lb.tags.len() + added > max {
                return Err(ApiError::new(
                    "LimitExceeded.ResourceAttachedTags",
                    format!("{id} would carry more than {max} tags"),
                ));
            }
        }
    }
    for id in &targets {
        if let Some(lb) = s.lb_mut(id) {
            for (k, v) in &tags {
                match lb.tags.iter_mut().find(|(ek, _)| ek == k) {
                    Some(e) => e.1 = v.clone(),
                    None => lb.tags.push((k.clone(), v.clone())),
                }
            }
        }
    }
    Ok(Outcome::new(json!({"FailedResources": fails}), targets))
}

fn untag_resources(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["ResourceList", "TagKeys"])?;
    let list = resources(&p)?;
    let keys = p
        .strs("TagKeys", MAX_TAGS_PER_REQUEST)
        .map_err(|e| {
            if e.code == "LimitExceeded" {
                ApiError::new("LimitExceeded.TagNumPerRequest", e.message)
            } else {
                e
            }
        })?
        .ok_or_else(|| p.missing("TagKeys"))?;
    let mut targets = Vec::new();
    let mut fails = Vec::new();
    for r in &list {
        match parse_resource(r, &ctx.region)? {
            Some(id) if s.lb(&id).is_some() => targets.push(id),
            _ => fails.push(failed(r)),
        }
    }
    for id in &targets {
        if let Some(lb) = s.lb_mut(id) {
            lb.tags.retain(|(k, _)| !keys.contains(k));
        }
    }
    Ok(Outcome::new(json!({"FailedResources": fails}), targets))
}

/// GetResources over `clbs`, the CLBs of every region (the Tag API is global): each named
/// with its own region.
pub(crate) fn get_resources(clbs: &[TaggedClb], p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "ResourceList",
        "TagFilters",
        "PaginationToken",
        "MaxResults",
    ])?;
    let list = p.strs("ResourceList", MAX_TAG_RESOURCES)?;
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for (path, m) in p.objs("TagFilters", 6)?.unwrap_or_default() {
        let f = Obj::new(m, &path);
        f.only(&["TagKey", "TagValue"])?;
        filters.push((
            f.req_str("TagKey")?,
            f.strs("TagValue", 10)?.unwrap_or_default(),
        ));
    }
    let max = p.int_in("MaxResults", 1, 200)?.unwrap_or(50) as usize;
    let start: usize = match p.str("PaginationToken")? {
        None => 0,
        Some(t) if t.is_empty() => 0,
        Some(t) => t
            .parse()
            .map_err(|_| p.invalid_value("PaginationToken", "is not a token this API returned"))?,
    };
    let wanted: Option<Vec<(String, String)>> = match list {
        Some(list) => Some(
            list.iter()
                .map(|r| parse_any_region(r))
                .collect::<ApiResult<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect(),
        ),
        None => None,
    };
    let rows: Vec<Value> = clbs
        .iter()
        .filter(|lb| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|(r, id)| *r == lb.region && *id == lb.id))
        })
        .filter(|lb| {
            filters.iter().all(|(k, vals)| {
                lb.tags.iter().any(|(tk, tv)| tk == k && (vals.is_empty() || vals.contains(tv)))
            })
        })
        .map(|lb| json!({"Resource": resource_name(&lb.region, &lb.id), "Tags": tags_json(&lb.tags)}))
        .collect();
    let page: Vec<Value> = rows.iter().skip(start).take(max).cloned().collect();
    let next = if start + max < rows.len() {
        (start + max).to_string()
    } else {
        String::new()
    };
    Ok(Outcome::new(
        json!({"PaginationToken": next, "ResourceTagMappingList": page}),
        Vec::new(),
    ))
}

fn describe_resources_by_tags(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "TagFilters",
        "CreateUin",
        "Offset",
        "Limit",
        "ResourcePrefix",
        "ResourceId",
        "ResourceRegion",
        "ServiceType",
    ])?;
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for (path, m) in p.objs("TagFilters", 6)?.unwrap_or_default() {
        let f = Obj::new(m, &path);
        f.only(&["TagKey", "TagValue"])?;
        filters.push((
            f.req_str("TagKey")?,
            f.strs("TagValue", 10)?.unwrap_or_default(),
        ));
    }
    let _ = p.int("CreateUin")?;
    let limit = p.int_in("Limit", 1, 1000)?.unwrap_or(15) as usize;
    let offset = p.int("Offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(p.invalid_value("Offset", "must not be negative"));
    }
    let prefix = p.str("ResourcePrefix")?;
    let service = p.str("ServiceType")?;
    let region = p.str("ResourceRegion")?;
    let resource_id = p.str("ResourceId")?;
    // Only CLBs live here: another service, prefix or region has no resources.
    let ours = service.as_deref().is_none_or(|x| x == "clb")
        && prefix.as_deref().is_none_or(|x| x == "clb")
        && region.as_deref().is_none_or(|x| x == ctx.region);
    let rows: Vec<Value> = s
        .load_balancers
        .iter()
        .filter(|_| ours)
        .filter(|lb| resource_id.as_ref().is_none_or(|r| *r == lb.id))
        .filter(|lb| {
            filters.iter().all(|(k, vals)| {
                lb.tags
                    .iter()
                    .any(|(tk, tv)| tk == k && (vals.is_empty() || vals.contains(tv)))
            })
        })
        .map(|lb| {
            json!({"ResourceRegion": ctx.region, "ServiceType": "clb", "ResourcePrefix": "clb",
                   "ResourceId": lb.id, "Tags": tags_json(&lb.tags)})
        })
        .collect();
    let page: Vec<Value> = rows
        .iter()
        .skip(offset as usize)
        .take(limit)
        .cloned()
        .collect();
    Ok(Outcome::new(
        json!({"TotalCount": rows.len(), "Offset": offset, "Limit": limit, "Rows": page}),
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_with_empty_or_own_uin_point_at_the_clb() {
        let r = "ap-guangzhou";
        assert_eq!(
            parse_resource("qcs::clb:ap-guangzhou:uin/:clb/lb-1", r)
                .unwrap()
                .as_deref(),
            Some("lb-1")
        );
        let own = format!("qcs::clb:ap-guangzhou:uin/{SIM_UIN}:clb/lb-1");
        assert_eq!(parse_resource(&own, r).unwrap().as_deref(), Some("lb-1"));
        assert_eq!(
            parse_resource("qcs::clb:ap-beijing:uin/:clb/lb-1", r).unwrap(),
            None
        );
        assert!(parse_resource("clb/lb-1", r).is_err());
    }

    #[test]
    fn get_resources_searches_every_region_and_names_each_clb_with_its_own() {
        let clb = |region: &str, id: &str, uid: &str| TaggedClb {
            region: region.into(),
            id: id.into(),
            tags: vec![
                ("tke-clusterId".into(), "cls-1".into()),
                ("tke-lb-ingress-uuid".into(), uid.into()),
            ],
        };
        let clbs = [
            clb("ap-guangzhou", "lb-1", "u1"),
            clb("ap-shanghai", "lb-1", "u2"),
            clb("ap-beijing", "lb-3", "u2"),
        ];
        let run = |body: Value| {
            let map = body.as_object().cloned().unwrap();
            let out = get_resources(&clbs, Obj::new(&map, "")).unwrap();
            let names: Vec<String> = out.fields["ResourceTagMappingList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Resource"].as_str().unwrap().to_string())
                .collect();
            (
                names,
                out.fields["PaginationToken"].as_str().unwrap().to_string(),
            )
        };
        let by_uid = json!({"TagFilters": [{"TagKey": "tke-lb-ingress-uuid", "TagValue": ["u2"]}]});
        assert_eq!(
            run(by_uid),
            (
                vec![
                    format!("qcs::clb:ap-shanghai:uin/{SIM_UIN}:clb/lb-1"),
                    format!("qcs::clb:ap-beijing:uin/{SIM_UIN}:clb/lb-3"),
                ],
                String::new()
            )
        );
        let (first, token) = run(json!({"MaxResults": 2}));
        assert_eq!((first.len(), token.as_str()), (2, "2"));
        let (rest, token) = run(json!({"MaxResults": 2, "PaginationToken": "2"}));
        assert_eq!((rest.len(), token.as_str()), (1, ""));
        let (named, _) = run(json!({"ResourceList": ["qcs::clb:ap-shanghai:uin/:clb/lb-1"]}));
        assert_eq!(
            named,
            vec![format!("qcs::clb:ap-shanghai:uin/{SIM_UIN}:clb/lb-1")]
        );
    }

    #[test]
    fn tagging_acts_in_the_region_of_the_first_resource_name() {
        let p = json!({"ResourceList": ["qcs::clb:ap-shanghai:uin/:clb/lb-1"]});
        let p = p.as_object().unwrap();
        assert_eq!(
            acting_region("TagResources", p).as_deref(),
            Some("ap-shanghai")
        );
        assert_eq!(
            acting_region("UnTagResources", p).as_deref(),
            Some("ap-shanghai")
        );
        assert_eq!(acting_region("GetResources", p), None);
        let bad = json!({"ResourceList": ["nope"]});
        assert_eq!(
            acting_region("TagResources", bad.as_object().unwrap()),
            None
        );
    }

    #[test]
    fn reserved_and_oversized_tags_are_refused() {
        assert!(check_tag("tke-clusterId", "cls-1").is_ok());
        assert_eq!(
            check_tag("qcloud:x", "v").unwrap_err().code,
            "InvalidParameterValue.ReservedTagKey"
        );
        assert_eq!(
            check_tag("", "v").unwrap_err().code,
            "InvalidParameterValue.TagKeyEmpty"
        );
        assert!(check_tag(&"k".repeat(128), "v").is_err());
    }
}
