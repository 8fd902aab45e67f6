//! The XML answers of the Auto Scaling (2011-01-01) and EC2 (2016-11-15) Query APIs, reduced
//! to the fields discovery reads. Unknown elements are ignored; the root element's name is not
//! checked (quick-xml's serde reads the root's content).

use serde::Deserialize;

/// `<X><member>…</member>…</X>` (Auto Scaling lists).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Members<T> {
    #[serde(default)]
    member: Vec<T>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members { member: Vec::new() }
    }
}

/// `<x><item>…</item>…</x>` (EC2 lists).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Items<T> {
    #[serde(default)]
    item: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { item: Vec::new() }
    }
}

/// An instance as listed by an Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupInstance {
    pub instance_id: String,
    /// `Pending`, `Pending:Wait`, `InService`, `Standby`, `Terminating`, ...
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy` (the group replaces an unhealthy instance); `Healthy` when absent.
    pub health_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub name: String,
    pub desired_capacity: usize,
    pub instances: Vec<GroupInstance>,
}

/// DescribeAutoScalingGroups: the groups of the answer (none when the name is unknown).
pub(super) fn describe_auto_scaling_groups(xml: &str) -> Result<Vec<Group>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        describe_auto_scaling_groups_result: Result_,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Result_ {
        #[serde(default)]
        auto_scaling_groups: Members<GroupXml>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct GroupXml {
        auto_scaling_group_name: String,
        desired_capacity: usize,
        #[serde(default)]
        instances: Members<InstanceXml>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct InstanceXml {
        instance_id: String,
        lifecycle_state: String,
        #[serde(default)]
        health_status: Option<String>,
    }
    let r: Response = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
    Ok(r.describe_auto_scaling_groups_result
        .auto_scaling_groups
        .member
        .into_iter()
        .map(|g| Group {
            name: g.auto_scaling_group_name,
            desired_capacity: g.desired_capacity,
            instances: g
                .instances
                .member
                .into_iter()
                .map(|i| GroupInstance {
                    instance_id: i.instance_id,
                    lifecycle_state: i.lifecycle_state,
                    health_status: i.health_status.unwrap_or_else(|| "Healthy".into()),
                })
                .collect(),
        })
        .collect())
}

/// DescribeAutoScalingInstances: the group of each listed instance, as (instance id, group).
pub(super) fn describe_auto_scaling_instances(xml: &str) -> Result<Vec<(String, String)>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        describe_auto_scaling_instances_result: Result_,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Result_ {
        #[serde(default)]
        auto_scaling_instances: Members<InstanceXml>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct InstanceXml {
        instance_id: String,
        auto_scaling_group_name: String,
    }
    let r: Response = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
    Ok(r.describe_auto_scaling_instances_result
        .auto_scaling_instances
        .member
        .into_iter()
        .map(|i| (i.instance_id, i.auto_scaling_group_name))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ec2Instance {
    pub instance_id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    /// Absent for an instance that has no network interface yet or any more.
    pub private_ip: Option<String>,
    /// Its tags, as (key, value), in the answer's order.
    pub tags: Vec<(String, String)>,
}

/// DescribeInstances: one page of instances, and the token of the next page.
pub(super) fn describe_instances(xml: &str) -> Result<(Vec<Ec2Instance>, Option<String>), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Response {
        #[serde(default)]
        reservation_set: Items<Reservation>,
        #[serde(default)]
        next_token: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Reservation {
        #[serde(default)]
        instances_set: Items<InstanceXml>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct InstanceXml {
        instance_id: String,
        instance_state: State,
        #[serde(default)]
        private_ip_address: Option<String>,
        #[serde(default)]
        tag_set: Items<Tag>,
    }
    #[derive(Deserialize)]
    struct State {
        name: String,
    }
    #[derive(Deserialize)]
    struct Tag {
        key: String,
        #[serde(default)]
        value: String,
    }
    let r: Response = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
    let instances = r
        .reservation_set
        .item
        .into_iter()
        .flat_map(|res| res.instances_set.item)
        .map(|i| Ec2Instance {
            instance_id: i.instance_id,
            state: i.instance_state.name,
            private_ip: i.private_ip_address.filter(|ip| !ip.is_empty()),
            tags: i.tag_set.item.into_iter().map(|t| (t.key, t.value)).collect(),
        })
        .collect();
    Ok((instances, r.next_token.filter(|t| !t.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;
    // The error document is parsed by the parser shared by every AWS client.
    use crate::aws_api::error_document as error;
    use proptest::prelude::*;

    // Trimmed from real answers (moto 5.2 and AWS documentation).
    const GROUPS: &str = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>etcd</AutoScalingGroupName><AutoScalingGroupARN>arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:12a3:autoScalingGroupName/etcd</AutoScalingGroupARN><LaunchTemplate><LaunchTemplateId>lt-1</LaunchTemplateId></LaunchTemplate><MinSize>3</MinSize><MaxSize>5</MaxSize><DesiredCapacity>3</DesiredCapacity><AvailabilityZones><member>us-east-1a</member></AvailabilityZones><LoadBalancerNames/><Instances><member><InstanceId>i-720dcc3b89e34b699</InstanceId><InstanceType>t3.micro</InstanceType><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus><LaunchTemplate><LaunchTemplateId>lt-1</LaunchTemplateId><Version>1</Version></LaunchTemplate></member><member><InstanceId>i-b33653870684ebae0</InstanceId><LifecycleState>Pending:Wait</LifecycleState></member></Instances><Tags/><TerminationPolicies><member>Default</member></TerminationPolicies></member></AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>B</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>"#;

    const INSTANCES: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-720dcc3b89e34b699</instanceId>
          <networkInterfaceSet><item><privateIpAddress>10.107.11.109</privateIpAddress><privateIpAddressesSet><item><privateIpAddress>10.107.11.109</privateIpAddress></item></privateIpAddressesSet></item></networkInterfaceSet>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateIpAddress>10.107.11.109</privateIpAddress>
          <tagSet><item><key>aws:autoscaling:groupName</key><value>etcd</value></item></tagSet>
        </item>
        <item>
          <instanceId>i-b33653870684ebae0</instanceId>
          <instanceState><code>0</code><name>pending</name></instanceState>
        </item>
      </instancesSet>
    </item>
    <item><reservationId>r-2</reservationId><instancesSet><item><instanceId>i-3</instanceId><instanceState><code>80</code><name>stopped</name></instanceState><privateIpAddress>10.0.0.3</privateIpAddress></item></instancesSet></item>
  </reservationSet>
  <nextToken>tok-2</nextToken>
</DescribeInstancesResponse>"#;

    #[test]
    fn groups() {
        let g = describe_auto_scaling_groups(GROUPS).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].name.as_str(), g[0].desired_capacity), ("etcd", 3));
        assert_eq!(
            g[0].instances,
            [
                GroupInstance {
                    instance_id: "i-720dcc3b89e34b699".into(),
                    lifecycle_state: "InService".into(),
                    health_status: "Healthy".into()
                },
                GroupInstance {
                    instance_id: "i-b33653870684ebae0".into(),
                    lifecycle_state: "Pending:Wait".into(),
                    health_status: "Healthy".into()
                },
            ]
        );
        let none = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>l</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>"#;
        assert_eq!(describe_auto_scaling_groups(none).unwrap(), []);
        let empty_group = "<R><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>e</AutoScalingGroupName><DesiredCapacity>0</DesiredCapacity><Instances/></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></R>";
        assert_eq!(describe_auto_scaling_groups(empty_group).unwrap()[0].instances, []);
        assert!(describe_auto_scaling_groups("<html>oops</html>").is_err());
    }

    #[test]
    fn group_of_instance() {
        let xml = r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingInstancesResult><AutoScalingInstances><member><InstanceId>i-720dcc3b89e34b699</InstanceId><InstanceType>t3.micro</InstanceType><AutoScalingGroupName>etcd</AutoScalingGroupName><LifecycleState>InService</LifecycleState></member></AutoScalingInstances></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>"#;
        assert_eq!(
            describe_auto_scaling_instances(xml).unwrap(),
            [("i-720dcc3b89e34b699".to_string(), "etcd".to_string())]
        );
        let none = "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult><AutoScalingInstances/></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>";
        assert_eq!(describe_auto_scaling_instances(none).unwrap(), []);
    }

    #[test]
    fn instances() {
        let (list, next) = describe_instances(INSTANCES).unwrap();
        assert_eq!(next.as_deref(), Some("tok-2"));
        assert_eq!(
            list,
            [
                Ec2Instance {
                    instance_id: "i-720dcc3b89e34b699".into(),
                    state: "running".into(),
                    private_ip: Some("10.107.11.109".into()),
                    tags: vec![("aws:autoscaling:groupName".into(), "etcd".into())],
                },
                Ec2Instance {
                    instance_id: "i-b33653870684ebae0".into(),
                    state: "pending".into(),
                    private_ip: None,
                    tags: vec![],
                },
                Ec2Instance {
                    instance_id: "i-3".into(),
                    state: "stopped".into(),
                    private_ip: Some("10.0.0.3".into()),
                    tags: vec![],
                },
            ]
        );
        let empty = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><reservationSet/></DescribeInstancesResponse>"#;
        assert_eq!(describe_instances(empty).unwrap(), (vec![], None));
    }

    #[test]
    fn errors() {
        let asg = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>a3</RequestId></ErrorResponse>"#;
        assert_eq!(error(asg), Some(("Throttling".into(), "Rate exceeded".into())));
        let ec2 = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>ea966190</RequestID></Response>"#;
        assert_eq!(
            error(ec2),
            Some(("RequestLimitExceeded".into(), "Request limit exceeded.".into()))
        );
        let no_message =
            "<ErrorResponse><Error><Code>InternalFailure</Code></Error></ErrorResponse>";
        assert_eq!(error(no_message), Some(("InternalFailure".into(), String::new())));
        assert_eq!(error("<html><body>502 Bad Gateway</body></html>"), None);
        assert_eq!(error("Service Unavailable"), None);
        assert_eq!(error(""), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = describe_auto_scaling_groups(&s);
            let _ = describe_auto_scaling_instances(&s);
            let _ = describe_instances(&s);
            let _ = error(&s);
        }

        #[test]
        fn parsers_never_panic_on_mangled_answers(cut in 0usize..2000, junk in "[<>/a-zA-Z ]{0,8}") {
            for doc in [GROUPS, INSTANCES] {
                let cut = cut.min(doc.len());
                let cut = (0..=cut).rev().find(|i| doc.is_char_boundary(*i)).unwrap_or(0);
                let s = format!("{}{junk}{}", &doc[..cut], &doc[cut..]);
                let _ = describe_auto_scaling_groups(&s);
                let _ = describe_instances(&s);
                let _ = error(&s);
            }
        }
    }
}
