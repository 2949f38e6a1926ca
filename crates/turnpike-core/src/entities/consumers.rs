//! `consumers` (`kong/db/schema/entities/consumers.lua`).

use crate::schema::{EntityCheck, Field, Schema};
use crate::typedefs;

pub(super) fn schema() -> Schema {
    let mut s = Schema::entity("consumers")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("username", Field::string().unique())
        .field("custom_id", Field::string().unique())
        .field("tags", typedefs::tags())
        .check(EntityCheck::at_least_one_of(&["custom_id", "username"]));
    s.endpoint_key = Some("username");
    s.workspaceable = true;
    s
}
