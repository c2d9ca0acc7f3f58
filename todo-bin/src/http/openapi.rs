//! OpenAPI 3.1 at `/api/openapi.json` and the interactive docs page at `/api/docs` (assets vendored in the
//! binary; nothing is downloaded at build or run time).

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "todo", description = "Event-driven task management: tasks, reminders, audit log and live events."),
    paths(
        super::tasks::create, super::tasks::list, super::tasks::get, super::tasks::update, super::tasks::delete,
        super::tasks::complete, super::tasks::set_reminder, super::tasks::list_reminders,
        super::tasks::cancel_reminder, super::tasks::audit, super::stream::stream,
        super::healthz, super::readyz, super::metrics,
    ),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
    modifiers(&Bearer),
    tags((name = "tasks"), (name = "reminders"), (name = "audit"), (name = "events"), (name = "operations"))
)]
pub(crate) struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", ApiDoc::openapi()))
}
