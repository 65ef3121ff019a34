//! Glance's default policy rules (secure RBAC), registered by the image service.
//!
//! Transcribed from OpenStack Glance `glance/policies/*.py` (base, image, tasks,
//! metadef, cache, discovery, in Glance's own registration order) at release 32.0.0
//! (2026.1 "Gazpacho", tag commit 07dd0a203b6883efa66486035c436b92c83da0f3); identical to
//! stable/2026.1. Check strings are the fully expanded strings Glance builds by
//! concatenating its `base.py` constants, kept verbatim (including the unparenthesised
//! `... or role:reader and (...)` of `get_member`/`get_members`, which parses the same
//! since `and` binds tighter than `or`). Deprecated fallbacks (`deprecated_rule`) are not
//! included; `modify_task` is, because Glance still registers it (deprecated for removal).
//! Rules registered with a plain `RuleDefault` and no scope upstream (`default`,
//! `context_is_admin`, `service_api`, `metadef_default`, `metadef_admin`) have no scope
//! types here. Descriptions are our own summaries with the HTTP operation guarded.
use ferrostack_policy::RuleDefault;

/// Every image-service rule: base rules first (`default`, `context_is_admin`,
/// `service_api`), then images/members/locations, tasks, metadata definitions, the image
/// cache API and discovery (`stores_info_detail`).
pub const IMAGE_RULES: &[RuleDefault] = &[
    // Base rules (glance/policies/base.py).
    RuleDefault {
        name: "default",
        check_str: "",
        description: "Fallback for actions with no rule of their own; empty = any authenticated caller (the task rules reference it).",
        scope_types: &[],
    },
    RuleDefault {
        name: "context_is_admin",
        check_str: "role:admin",
        description: "Who counts as a Glance admin (is_admin in the request context): the admin role, on any project.",
        scope_types: &[],
    },
    RuleDefault {
        name: "service_api",
        check_str: "role:service or role:admin",
        description: "Service-to-service API callers: the service role, or admin (kept until after the 2026.1 SLURP).",
        scope_types: &[],
    },
    // Images, locations, members, cache, import (glance/policies/image.py).
    RuleDefault {
        name: "add_image",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        description: "POST /v2/images: create an image owned by the caller's project (admin may set any owner).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_image",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "DELETE /v2/images/{image_id}: delete an image of the caller's project.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_image",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
        description: "GET /v2/images/{image_id}: show an image the caller owns, is a member of, or that is community, public or shared.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_images",
        check_str: "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        description: "GET /v2/images: list images (visibility filtering is done by the query itself).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_image",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "PATCH /v2/images/{image_id}: update an image of the caller's project.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "publicize_image",
        check_str: "rule:context_is_admin",
        description: "PATCH /v2/images/{image_id}: set visibility to public (admin only).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "communitize_image",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "PATCH /v2/images/{image_id}: set visibility to community.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "download_image",
        check_str: "rule:context_is_admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
        description: "GET /v2/images/{image_id}/file: download image data the caller can see (member role).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "upload_image",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "PUT /v2/images/{image_id}/file: upload data to an image of the caller's project.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_image_location",
        check_str: "rule:context_is_admin",
        description: "PATCH /v2/images/{image_id}: remove a location from an image (admin only).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_image_location",
        check_str: "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        description: "GET /v2/images/{image_id}: see an image's locations (with show_multiple_locations).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "set_image_location",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "PATCH /v2/images/{image_id}: add or replace an image's location URIs.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_image_location",
        check_str: "rule:service_api or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
        description: "POST /v2/images/{image_id}/locations: add a location (service users, or a member of the owning project).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "fetch_image_location",
        check_str: "rule:service_api",
        description: "GET /v2/images/{image_id}/locations: list all locations of an image (service users only).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_member",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "POST /v2/images/{image_id}/members: share an image with another project.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_member",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "DELETE /v2/images/{image_id}/members/{member_id}: stop sharing an image with a project.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_member",
        check_str: "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        description: "GET /v2/images/{image_id}/members/{member_id}: show a membership (image owner or the member project).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_members",
        check_str: "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
        description: "GET /v2/images/{image_id}/members: list an image's members (image owner or a member project).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_member",
        check_str: "rule:context_is_admin or (role:member and project_id:%(member_id)s)",
        description: "PUT /v2/images/{image_id}/members/{member_id}: accept or reject a share (the member project only).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "manage_image_cache",
        check_str: "rule:context_is_admin",
        description: "Legacy blanket rule for image cache management (admin only).",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "deactivate",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "POST /v2/images/{image_id}/actions/deactivate: deactivate an image.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "reactivate",
        check_str: "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
        description: "POST /v2/images/{image_id}/actions/reactivate: reactivate a deactivated image.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "copy_image",
        check_str: "rule:context_is_admin",
        description: "POST /v2/images/{image_id}/import (copy-image method): copy an image to other stores (admin only).",
        scope_types: &["project"],
    },
    // Tasks (glance/policies/tasks.py).
    RuleDefault {
        name: "get_task",
        check_str: "rule:default",
        description: "GET /v2/tasks/{task_id}: internal per-task check; API access is gated by tasks_api_access.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_tasks",
        check_str: "rule:default",
        description: "GET /v2/tasks: internal per-task check; API access is gated by tasks_api_access.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_task",
        check_str: "rule:default",
        description: "POST /v2/tasks: internal check also used by image import; API access is gated by tasks_api_access.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_task",
        check_str: "rule:default",
        description: "DELETE /v2/tasks/{task_id}: never honoured by the API; deprecated for removal upstream.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "tasks_api_access",
        check_str: "rule:context_is_admin",
        description: "Blanket gate on every /v2/tasks API call (admin only).",
        scope_types: &["project"],
    },
    // Metadata definitions (glance/policies/metadef.py).
    RuleDefault {
        name: "metadef_default",
        check_str: "",
        description: "Legacy default for metadata-definition reads; empty = any authenticated caller.",
        scope_types: &[],
    },
    RuleDefault {
        name: "metadef_admin",
        check_str: "rule:context_is_admin",
        description: "Who may write metadata definitions (admin).",
        scope_types: &[],
    },
    RuleDefault {
        name: "get_metadef_namespace",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}: show a namespace the caller owns or that is public.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_namespaces",
        check_str: "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
        description: "GET /v2/metadefs/namespaces: list namespaces.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_metadef_namespace",
        check_str: "rule:metadef_admin",
        description: "PUT /v2/metadefs/namespaces/{namespace_name}: update a namespace.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_namespace",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces: create a namespace.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_metadef_namespace",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}: delete a namespace.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_object",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}: show an object.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_objects",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/objects: list a namespace's objects.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_metadef_object",
        check_str: "rule:metadef_admin",
        description: "PUT /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}: update an object.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_object",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces/{namespace_name}/objects: create an object.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_metadef_object",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}: delete an object.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "list_metadef_resource_types",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/resource_types: list resource types.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_resource_type",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/resource_types: list a namespace's resource type associations.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_resource_type_association",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces/{namespace_name}/resource_types: associate a resource type.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "remove_metadef_resource_type_association",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}/resource_types/{name}: remove an association.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_property",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}: show a property.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_properties",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/properties: list a namespace's properties.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_metadef_property",
        check_str: "rule:metadef_admin",
        description: "PUT /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}: update a property.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_property",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces/{namespace_name}/properties: create a property.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "remove_metadef_property",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}: delete a property.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_tag",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}: show a tag.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "get_metadef_tags",
        check_str: "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))",
        description: "GET /v2/metadefs/namespaces/{namespace_name}/tags: list a namespace's tags.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "modify_metadef_tag",
        check_str: "rule:metadef_admin",
        description: "PUT /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}: rename a tag.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_tag",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}: create one tag.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "add_metadef_tags",
        check_str: "rule:metadef_admin",
        description: "POST /v2/metadefs/namespaces/{namespace_name}/tags: create several tags.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_metadef_tag",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}: delete one tag.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "delete_metadef_tags",
        check_str: "rule:metadef_admin",
        description: "DELETE /v2/metadefs/namespaces/{namespace_name}/tags: delete all tags of a namespace.",
        scope_types: &["project"],
    },
    // Image cache API (glance/policies/cache.py).
    RuleDefault {
        name: "cache_image",
        check_str: "rule:context_is_admin",
        description: "PUT /v2/cache/{image_id}: queue an image for caching.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "cache_list",
        check_str: "rule:context_is_admin",
        description: "GET /v2/cache: list cached and queued images.",
        scope_types: &["project"],
    },
    RuleDefault {
        name: "cache_delete",
        check_str: "rule:context_is_admin",
        description: "DELETE /v2/cache and /v2/cache/{image_id}: remove image(s) from the cache and/or queue.",
        scope_types: &["project"],
    },
    // Discovery (glance/policies/discovery.py).
    RuleDefault {
        name: "stores_info_detail",
        check_str: "rule:context_is_admin or rule:service_api",
        description: "GET /v2/info/stores/detail: show store backends with their properties (admin or service).",
        scope_types: &["project"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_policy::Enforcer;
    use std::collections::HashSet;

    /// Rules whose Glance default is deliberately the empty check string.
    const INTENTIONALLY_EMPTY: &[&str] = &["default", "metadef_default"];

    fn rule(name: &str) -> &'static RuleDefault {
        IMAGE_RULES
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("missing rule {name}"))
    }

    /// Every `rule:NAME` token in a check string.
    fn rule_refs(check: &str) -> Vec<&str> {
        check
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(|tok| tok.strip_prefix("rule:"))
            .collect()
    }

    #[test]
    fn names_are_unique_and_unprefixed() {
        let mut seen = HashSet::new();
        for r in IMAGE_RULES {
            assert!(seen.insert(r.name), "duplicate rule {}", r.name);
            assert!(
                !r.name.contains(':'),
                "Glance names are unprefixed: {}",
                r.name
            );
        }
        assert_eq!(IMAGE_RULES.len(), 63);
    }

    #[test]
    fn rule_references_resolve() {
        let names: HashSet<&str> = IMAGE_RULES.iter().map(|r| r.name).collect();
        for r in IMAGE_RULES {
            for target in rule_refs(r.check_str) {
                assert!(
                    names.contains(target),
                    "{} references unknown rule {target}",
                    r.name
                );
            }
        }
    }

    #[test]
    fn table_registers_and_validates() {
        let mut enforcer = Enforcer::new(true);
        enforcer.register(IMAGE_RULES).expect("image rules parse");
        assert!(enforcer.validate().is_empty(), "{:?}", enforcer.validate());
        for r in IMAGE_RULES {
            assert!(enforcer.is_registered(r.name), "{} not registered", r.name);
        }
    }

    #[test]
    fn empty_only_where_glance_is_empty() {
        for r in IMAGE_RULES {
            assert_eq!(
                r.check_str.is_empty(),
                INTENTIONALLY_EMPTY.contains(&r.name),
                "{}",
                r.name
            );
            assert!(!r.description.is_empty(), "{} lacks a description", r.name);
        }
    }

    #[test]
    fn api_rules_are_project_scoped() {
        let unscoped = [
            "default",
            "context_is_admin",
            "service_api",
            "metadef_default",
            "metadef_admin",
        ];
        for r in IMAGE_RULES {
            if unscoped.contains(&r.name) {
                assert!(r.scope_types.is_empty(), "{}", r.name);
            } else {
                assert_eq!(r.scope_types, &["project"], "{}", r.name);
            }
        }
    }

    #[test]
    fn spot_check_expanded_strings() {
        assert_eq!(rule("context_is_admin").check_str, "role:admin");
        assert_eq!(rule("service_api").check_str, "role:service or role:admin");
        assert_eq!(
            rule("get_image").check_str,
            "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or \
             project_id:%(member_id)s or 'community':%(visibility)s or \
             'public':%(visibility)s or 'shared':%(visibility)s))"
        );
        assert_eq!(
            rule("add_image").check_str,
            "rule:context_is_admin or (role:member and project_id:%(project_id)s and \
             project_id:%(owner)s)"
        );
        assert_eq!(
            rule("get_members").check_str,
            "rule:context_is_admin or role:reader and (project_id:%(project_id)s or \
             project_id:%(member_id)s)"
        );
        assert_eq!(
            rule("modify_member").check_str,
            "rule:context_is_admin or (role:member and project_id:%(member_id)s)"
        );
        assert_eq!(rule("publicize_image").check_str, "rule:context_is_admin");
        assert_eq!(rule("tasks_api_access").check_str, "rule:context_is_admin");
        assert_eq!(rule("get_task").check_str, "rule:default");
        assert_eq!(
            rule("stores_info_detail").check_str,
            "rule:context_is_admin or rule:service_api"
        );
    }
}
