//! The callbacks Redis calls to get and set an `enc.*` config, and how a new value is taken.

use super::*;
use crate::ffi::ConfigHooks;

pub(super) fn set_bool_value(config: &Config, new: bool) {
    if let Kind::Bool { value, .. } = config.kind {
        if value.swap(new, Relaxed) != new {
            changed(config.name, if new { "yes" } else { "no" });
        }
    }
}

pub(super) fn set_number_value(config: &Config, new: i64) {
    if let Kind::Number { value, .. } = config.kind {
        if value.swap(new, Relaxed) != new {
            changed(config.name, &new.to_string());
        }
    }
}

pub(super) fn set_text_value(config: &Config, text: &str) -> Result<(), String> {
    let Kind::Text { apply, .. } = config.kind else {
        return Err("not a text config".into());
    };
    let unchanged = TEXT_VALUES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(n, v)| *n == config.name && v == text);
    if unchanged {
        return Ok(());
    }
    apply(text)?;
    remember_text(config.name, text);
    changed(config.name, text);
    Ok(())
}

/// What `CONFIG GET` and `CONFIG SET` do for each config, by its index in CONFIGS.
pub(super) static HOOKS: ConfigHooks = ConfigHooks {
    get_bool: |index| match config_of(index).kind {
        Kind::Bool { value, .. } => value.load(Relaxed),
        _ => false,
    },
    set_bool: |index, new| set_bool_value(config_of(index), new),
    get_number: |index| match config_of(index).kind {
        Kind::Number { value, .. } => value.load(Relaxed),
        _ => 0,
    },
    set_number: |index, new| set_number_value(config_of(index), new),
    get_text: |index| {
        let short = config_of(index).name;
        TEXT_VALUES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(n, _)| *n == short)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    },
    set_text: |index, text| set_text_value(config_of(index), text),
};
