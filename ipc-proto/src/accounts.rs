//! The system accounts of system mode (`scanbindd --system`), and lookups in the
//! local user and group databases (`/etc/passwd`, `/etc/group`).
//!
//! In system mode the daemon runs as the [`DAEMON_USER`] system user, and the users in
//! the [`AGENT_GROUP`] group may register a display agent; the system bus policy
//! (`packaging/dbus/system.d/io.scanbind.Daemon.conf`) and the packaging's sysusers
//! file name both. The daemon checks group membership, and the agent resolves the
//! daemon's user, through the functions here.
//!
//! Only the local files are read (where `systemd-sysusers` and `useradd` write), as
//! glibc's `files` source does: comment and blank lines are skipped, as are NIS
//! compatibility lines (`+`/`-`); the first entry of a name or id wins; a malformed line
//! is skipped, never half-read. Users and groups from other sources (LDAP,
//! systemd-homed) are not seen: put the accounts scanbind's system mode relies on in
//! the local files.

use std::io;
use std::path::Path;

/// The system user `scanbindd --system` runs as (it alone may own the bus name).
pub const DAEMON_USER: &str = "scanbind";

/// The group whose members may register a display agent with a system-mode daemon.
pub const AGENT_GROUP: &str = "scanbind-agent";

/// The group whose members may manage a system-mode daemon (`io.scanbind.Manager1`)
/// where polkit does not run (the default of the daemon's `admin_group` key).
pub const ADMIN_GROUP: &str = "scanbind-admin";

/// The local user database.
pub const PASSWD_FILE: &str = "/etc/passwd";

/// The local group database.
pub const GROUP_FILE: &str = "/etc/group";

/// A user from the user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

/// A group from the group database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group name.
    pub name: String,
    /// The group id.
    pub gid: u32,
    /// The login names listed as its (supplementary) members.
    pub members: Vec<String>,
}

/// The users in a `passwd(5)` text, in order (malformed lines skipped).
pub fn parse_passwd(text: &str) -> Vec<User> {
    records(text)
        .filter_map(|fields| {
            // name:password:uid:gid:gecos:home:shell
            if fields.len() != 7 || fields[0].is_empty() {
                return None;
            }
            Some(User {
                name: fields[0].to_owned(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        })
        .collect()
}

/// The groups in a `group(5)` text, in order (malformed lines skipped).
pub fn parse_group(text: &str) -> Vec<Group> {
    records(text)
        .filter_map(|fields| {
            // name:password:gid:member,member
            if fields.len() != 4 || fields[0].is_empty() {
                return None;
            }
            Some(Group {
                name: fields[0].to_owned(),
                gid: fields[2].parse().ok()?,
                members: fields[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The `:`-separated fields of every line that is a record.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// The user named `name` in the local user database.
pub fn user_by_name(name: &str) -> io::Result<Option<User>> {
    Ok(parse_passwd(&read(Path::new(PASSWD_FILE))?)
        .into_iter()
        .find(|u| u.name == name))
}

/// Whether `uid` is a member of the group named `group` in the local databases:
/// its primary group is that group, or its login name is listed among the group's
/// members. A uid or group the databases do not know is not a member.
pub fn uid_in_group(uid: u32, group: &str) -> io::Result<bool> {
    let users = parse_passwd(&read(Path::new(PASSWD_FILE))?);
    let groups = parse_group(&read(Path::new(GROUP_FILE))?);
    Ok(member_of(&users, &groups, uid, group))
}

/// [`uid_in_group`] on parsed databases.
pub fn member_of(users: &[User], groups: &[Group], uid: u32, group: &str) -> bool {
    let (Some(user), Some(group)) = (
        users.iter().find(|u| u.uid == uid),
        groups.iter().find(|g| g.name == group),
    ) else {
        return false;
    };
    user.gid == group.gid || group.members.contains(&user.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        \n\
        scanbind:x:990:990:scanbind device daemon:/var/lib/scanbind:/usr/sbin/nologin\n\
        alice:x:1000:1000::/home/alice:/bin/sh\n\
        bob:x:1001:1001::/home/bob:/bin/sh\n\
        carol:x:1002:989::/home/carol:/bin/sh\n\
        broken:x:notanumber:1:::\n\
        short:x:5\n\
        +nisuser::::::\n\
        alice:x:4000:4000::/home/alice2:/bin/sh\n";

    const GROUP: &str = "root:x:0:\n\
        scanbind:x:990:\n\
        scanbind-agent:x:989:alice, dave\n\
        alice:x:1000:\n\
        bad:x:y:alice\n";

    #[test]
    fn parses_users_skipping_comments_compat_and_malformed_lines() {
        let users = parse_passwd(PASSWD);
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "scanbind", "alice", "bob", "carol", "alice"]
        );
        // The first entry of a name wins.
        let alice = users.iter().find(|u| u.name == "alice").unwrap();
        assert_eq!((alice.uid, alice.gid), (1000, 1000));
    }

    #[test]
    fn membership_by_list_or_primary_group_only() {
        let users = parse_passwd(PASSWD);
        let groups = parse_group(GROUP);
        assert_eq!(groups[2].members, ["alice", "dave"]);
        assert!(member_of(&users, &groups, 1000, AGENT_GROUP), "listed");
        assert!(member_of(&users, &groups, 1002, AGENT_GROUP), "primary");
        assert!(!member_of(&users, &groups, 1001, AGENT_GROUP), "not listed");
        assert!(!member_of(&users, &groups, 0, AGENT_GROUP), "root is not");
        // dave is listed but has no user entry; an unknown uid is no member.
        assert!(!member_of(&users, &groups, 4242, AGENT_GROUP));
        assert!(!member_of(&users, &groups, 1000, "no-such-group"));
        // A malformed group line is no group at all.
        assert!(!member_of(&users, &groups, 1000, "bad"));
    }
}
