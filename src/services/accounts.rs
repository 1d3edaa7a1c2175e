//! Accounts: registration, sign-in, sign-out, profiles, and what admins do to accounts.

use chrono::{DateTime, Utc};

use serde_json::json;

use crate::auth::{AuthUser, password, token};
use crate::commit::Commit;
use crate::db::audit;
use crate::db::tokens::{self, NewToken};
use crate::db::users::{self, NewUser, User, UserChangeset};
use crate::db::{Db, is_unique_violation};
use crate::domain::audit::{Action, AuditRecord, ObjectType};
use crate::domain::{Email, FieldError, FieldErrors, Password, PersonName, Role, UserId};
use crate::error::ApiError;
use crate::services::audit as trail;

/// A new account, parsed and valid.
pub struct NewAccount {
    pub email: Email,
    pub name: PersonName,
    pub password: Password,
    pub role: Role,
}

/// A successful sign-in.
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// A user's change to their own profile; `None` leaves a field alone.
pub struct ProfileUpdate {
    pub name: Option<PersonName>,
    /// The new password and the current one that authorizes the change.
    pub password: Option<(Password, String)>,
    pub role: Option<Role>,
}

/// Creates an account. The email must be free: a second one gets 409 `email_taken`.
pub async fn create(db: &Db, commit: &Commit<User>, account: NewAccount) -> Result<User, ApiError> {
    if find_by_email(db, &account.email).await?.is_some() {
        return Err(email_taken());
    }
    let hash = password::hash(account.password).await?;
    let now = crate::db::now().naive_utc();
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let new = NewUser {
                email: account.email.as_str(),
                name: account.name.as_str(),
                password_hash: &hash,
                role: account.role.as_str(),
                active: true,
                created_at: now,
                updated_at: now,
            };
            let user = users::insert(c, &new).await.map_err(|e| {
                // Two registrations raced past the check above: the database decides.
                if is_unique_violation(&e) {
                    email_taken()
                } else {
                    ApiError::from(e)
                }
            })?;
            let registered =
                AuditRecord::new(Action::UserRegistered, ObjectType::User, Some(user.id))
                    .with(json!({"email": user.email, "role": user.role}));
            audit::record(c, &commit.actor, &[registered], now).await?;
            commit.seal(c, &user).await?;
            Ok::<_, ApiError>(user)
        })
    })
    .await
}

async fn find_by_email(db: &Db, email: &Email) -> Result<Option<User>, ApiError> {
    let email = email.as_str().to_owned();
    db.run(move |mut conn| async move { Ok(users::find_by_email(&mut conn, &email).await?) })
        .await
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        code: "email_taken",
        message: "an account with this email already exists",
    }
}

/// Signs in: a wrong email and a wrong password get the same answer in
/// about the same time. Every attempt is in the audit trail: a failure in a
/// transaction of its own, a success with its token.
pub async fn login(
    db: &Db,
    commit: &Commit<Session>,
    decoy_hash: &str,
    ttl: std::time::Duration,
    email: Email,
    candidate: String,
) -> Result<Session, ApiError> {
    let actor = &commit.actor;
    let failed = |user: Option<i64>, reason: &str| {
        AuditRecord::new(Action::UserLoginFailed, ObjectType::User, user)
            .with(json!({"email": email.as_str(), "reason": reason}))
    };
    let Some(user) = find_by_email(db, &email).await? else {
        password::verify(candidate, decoy_hash.to_owned()).await?;
        trail::record_alone(db, actor, vec![failed(None, "unknown_email")]).await?;
        return Err(ApiError::InvalidCredentials);
    };
    if !password::verify(candidate, user.password_hash.clone()).await? {
        trail::record_alone(db, actor, vec![failed(Some(user.id), "wrong_password")]).await?;
        return Err(ApiError::InvalidCredentials);
    }
    if !user.active {
        trail::record_alone(db, actor, vec![failed(Some(user.id), "deactivated")]).await?;
        return Err(ApiError::AccountDeactivated);
    }

    let token::IssuedToken(token, hash) = token::generate();
    let now = crate::db::now();
    let session = Session {
        token,
        expires_at: now + ttl,
        user,
    };
    let user_id = session.user.id;
    let mut commit = commit.clone();
    commit.actor = commit.actor.as_user(Some(UserId(user_id)));
    db.write(move |c| {
        Box::pin(async move {
            let new = NewToken {
                user_id,
                token_hash: &hash,
                created_at: now.naive_utc(),
                expires_at: session.expires_at.naive_utc(),
            };
            let token_id = tokens::insert(c, &new).await?;
            let record =
                AuditRecord::new(Action::UserLoginSucceeded, ObjectType::User, Some(user_id))
                    .with(json!({"token_id": token_id}));
            audit::record(c, &commit.actor, &[record], now.naive_utc()).await?;
            commit.seal(c, &session).await?;
            Ok::<_, ApiError>(session)
        })
    })
    .await
}

/// Revokes the token the request came with.
pub async fn logout(db: &Db, commit: &Commit<()>, auth: &AuthUser) -> Result<(), ApiError> {
    let (token_id, user_id) = (auth.token_id, auth.id.0);
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let now = crate::db::now().naive_utc();
            tokens::revoke(c, token_id, now).await?;
            let record = AuditRecord::new(Action::UserLogout, ObjectType::User, Some(user_id))
                .with(json!({"token_id": token_id}));
            audit::record(c, &commit.actor, &[record], now).await?;
            commit.seal(c, &()).await?;
            Ok::<_, ApiError>(())
        })
    })
    .await
}

pub async fn get(db: &Db, id: UserId) -> Result<User, ApiError> {
    db.run(move |mut conn| async move {
        users::find(&mut conn, id.0)
            .await?
            .ok_or(ApiError::NotFound("user"))
    })
    .await
}

/// Applies a user's change to their own profile. A new password needs the
/// current one, and signs out every other session of that user.
pub async fn update_profile(
    db: &Db,
    commit: &Commit<User>,
    auth: &AuthUser,
    update: ProfileUpdate,
) -> Result<User, ApiError> {
    let current = get(db, auth.id).await?;
    let mut errors = FieldErrors::new();

    let role = match update.role {
        None => None,
        Some(Role::Admin) if auth.role != Role::Admin => {
            let refusal = ApiError::Forbidden("only an admin can grant the admin role");
            let (kind, id, actor) = (ObjectType::User, Some(auth.id.0), &commit.actor);
            return Err(trail::denied(db, actor, kind, id, "user.grant_admin", refusal).await);
        }
        Some(wanted) if wanted == auth.role => None,
        Some(Role::Host) if auth.role == Role::Guest => Some(Role::Host),
        Some(_) => {
            errors.push(FieldError::new(
                "role",
                "invalid_role_change",
                "the only role change allowed here is from guest to host",
            ));
            None
        }
    };

    let new_hash = match update.password {
        None => None,
        Some((new_password, current_password)) => {
            if password::verify(current_password, current.password_hash.clone()).await? {
                Some(password::hash(new_password).await?)
            } else {
                errors.push(incorrect_current_password());
                None
            }
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.into_vec()));
    }

    // The hash the current password was checked against: the change is
    // made only while it is still the account's, so of two changes checked
    // against the same password at once only one goes through.
    let checked = new_hash.as_ref().map(|_| current.password_hash.clone());
    let (user_id, keep_token) = (auth.id.0, auth.token_id);
    let name = update.name;
    let mut records = Vec::new();
    let object = |action| AuditRecord::new(action, ObjectType::User, Some(user_id));
    if let Some(name) = &name {
        records.push(object(Action::UserNameChanged).with(json!({"name": name.as_str()})));
    }
    if new_hash.is_some() {
        records.push(object(Action::UserPasswordChanged));
    }
    if let Some(role) = role {
        let change = json!({"from": current.role, "to": role.as_str()});
        records.push(object(Action::UserRoleChanged).with(change));
    }
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let now = crate::db::now().naive_utc();
            let changes = UserChangeset {
                name: name.as_ref().map(PersonName::as_str),
                password_hash: new_hash.as_deref(),
                role: role.map(Role::as_str),
                active: None,
                updated_at: Some(now),
            };
            let user = match &checked {
                Some(checked) => users::update_if_password(c, user_id, checked, &changes)
                    .await?
                    .ok_or_else(incorrect_password)?,
                None => users::update(c, user_id, &changes)
                    .await?
                    .ok_or(ApiError::NotFound("user"))?,
            };
            if new_hash.is_some() {
                tokens::revoke_all_for_user(c, user_id, Some(keep_token), now).await?;
            }
            audit::record(c, &commit.actor, &records, now).await?;
            commit.seal(c, &user).await?;
            Ok::<_, ApiError>(user)
        })
    })
    .await
}

fn incorrect_current_password() -> FieldError {
    FieldError::new(
        "current_password",
        "incorrect",
        "current_password is not this account's password",
    )
}

/// The refusal of a password change whose current password was right when
/// checked but changed before the change was written.
fn incorrect_password() -> ApiError {
    ApiError::Validation(vec![incorrect_current_password()])
}

/// Parses a profile update's raw fields, reporting every bad one.
pub fn parse_profile_update(
    name: Option<&str>,
    new_password: Option<&str>,
    current_password: Option<&str>,
    role: Option<&str>,
) -> Result<ProfileUpdate, ApiError> {
    let mut errors = FieldErrors::new();
    let name = name.and_then(|n| errors.check("name", PersonName::parse(n)));
    let password = match (new_password, current_password) {
        (None, _) => None,
        (Some(_), None) => {
            errors.push(FieldError::new(
                "current_password",
                "required",
                "current_password is required to change the password",
            ));
            None
        }
        (Some(new), Some(current)) => errors
            .check("password", Password::parse(new))
            .map(|p| (p, current.to_owned())),
    };
    let role = role.and_then(|r| errors.check("role", r.parse::<Role>()));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors.into_vec()));
    }
    Ok(ProfileUpdate {
        name,
        password,
        role,
    })
}

/// One page of all users, for admins.
pub async fn list(db: &Db, after: i64, limit: i64) -> Result<Vec<User>, ApiError> {
    db.run(move |mut conn| async move { Ok(users::list(&mut conn, after, limit).await?) })
        .await
}

/// Activates or deactivates an account (admins only). Deactivation signs the
/// user out everywhere, at once.
pub async fn set_active(
    db: &Db,
    commit: &Commit<User>,
    admin: &AuthUser,
    target: UserId,
    active: bool,
) -> Result<User, ApiError> {
    let attempted = if active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    if let Err(refusal) = admin.require_admin() {
        let (id, actor) = (Some(target.0), &commit.actor);
        return Err(trail::denied(db, actor, ObjectType::User, id, attempted, refusal).await);
    }
    if target == admin.id && !active {
        return Err(ApiError::Conflict {
            code: "cannot_deactivate_self",
            message: "an admin cannot deactivate their own account",
        });
    }
    let action = if active {
        Action::UserActivated
    } else {
        Action::UserDeactivated
    };
    let commit = commit.clone();
    db.write(move |c| {
        Box::pin(async move {
            let now = crate::db::now().naive_utc();
            let changes = UserChangeset {
                active: Some(active),
                updated_at: Some(now),
                ..Default::default()
            };
            let user = users::update(c, target.0, &changes)
                .await?
                .ok_or(ApiError::NotFound("user"))?;
            if !active {
                tokens::revoke_all_for_user(c, target.0, None, now).await?;
            }
            let record = AuditRecord::new(action, ObjectType::User, Some(target.0));
            audit::record(c, &commit.actor, &[record], now).await?;
            commit.seal(c, &user).await?;
            Ok::<_, ApiError>(user)
        })
    })
    .await
}
