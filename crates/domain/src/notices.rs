//! What the service itself says to signers (the confirmation email, the
//! confirmation page), in the languages the campaign works in. A petition's
//! own words (its title, text and ask) come from its wordings; these are the
//! service's. Placeholders in braces are filled in by [`fill`].

use uuid::Uuid;

/// The service's words in one language.
#[derive(Debug)]
pub struct Notices {
    /// The language subtag these are for (`en`, `fr`, …).
    pub language: &'static str,
    /// The confirmation email's subject: `{title}`.
    pub confirm_subject: &'static str,
    /// Its text: `{title}`, `{link}`, `{receipt}`, `{days}`, `{withdraw}`.
    pub confirm_body: &'static str,
    /// The confirmation page's heading.
    pub confirm_heading: &'static str,
    /// What the page says above its button: `{title}`.
    pub confirm_intro: &'static str,
    pub confirm_button: &'static str,
    pub confirmed: &'static str,
    /// For a token nobody was sent, or one mistyped.
    pub unknown_link: &'static str,
    /// For a signature whose time ran out before it was confirmed.
    pub expired_link: &'static str,
    /// The withdrawal link's message: `{title}`; its text: `{title}`,
    /// `{link}`, `{receipt}`.
    pub withdraw_subject: &'static str,
    pub withdraw_body: &'static str,
    /// The withdrawal page: heading, what it says above its button
    /// (`{title}`), the button, what it says once done, and for a link
    /// whose time ran out.
    pub withdraw_heading: &'static str,
    pub withdraw_intro: &'static str,
    pub withdraw_button: &'static str,
    pub withdrawn: &'static str,
    pub withdraw_expired: &'static str,
    /// The form asking for a withdrawal link: its text (`{title}`), the
    /// field's label, the button, and what it says once sent (whether or not
    /// the address signed).
    pub request_intro: &'static str,
    pub request_label: &'static str,
    pub request_button: &'static str,
    pub request_sent: &'static str,
}

const EN: Notices = Notices {
    language: "en",
    confirm_subject: "Please confirm your signature: {title}",
    confirm_body: "Thank you for signing “{title}”.\n\n\
        Your signature is not counted until you confirm it. Open this link and press the button to confirm:\n\
        {link}\n\n\
        Your receipt: {receipt}\n\n\
        If you did not sign, ignore this message: the signature will never be counted, and its data is erased within {days} days.\n\
        To withdraw your signature later, open {withdraw}",
    confirm_heading: "Confirm your signature",
    confirm_intro: "You signed “{title}”. Press the button to confirm your signature, so that it is counted.",
    confirm_button: "Confirm my signature",
    confirmed: "Thank you: your signature is confirmed and counted.",
    unknown_link: "This link is not valid. It may have been copied incompletely, or replaced by a newer email.",
    expired_link: "This link has expired, and the signature it was for has been erased. You may sign again.",
    withdraw_subject: "Withdraw your signature: {title}",
    withdraw_body: "Someone, most likely you, asked to withdraw the signature given with this address to “{title}”.\n\n\
        To withdraw it and erase your data, open this link and press the button:\n\
        {link}\n\n\
        Your receipt: {receipt}\n\n\
        If you did not ask for this, ignore this message: nothing changes.",
    withdraw_heading: "Withdraw your signature",
    withdraw_intro: "Press the button to withdraw your signature from “{title}”. Your name and address are erased, and your signature is no longer counted.",
    withdraw_button: "Withdraw my signature",
    withdrawn: "Your signature is withdrawn and your data erased. You may sign again at any time.",
    withdraw_expired: "This link has expired. Ask for a new one to withdraw your signature.",
    request_intro: "Enter the email address you signed “{title}” with. If it signed, a link to withdraw the signature is sent to it.",
    request_label: "Email address",
    request_button: "Send me the link",
    request_sent: "If this address signed, a message with a link to withdraw the signature is on its way.",
};

const FR: Notices = Notices {
    language: "fr",
    confirm_subject: "Confirmez votre signature : {title}",
    confirm_body: "Merci d’avoir signé « {title} ».\n\n\
        Votre signature ne sera comptée qu’après confirmation. Ouvrez ce lien et appuyez sur le bouton pour confirmer :\n\
        {link}\n\n\
        Votre reçu : {receipt}\n\n\
        Si vous n’avez pas signé, ignorez ce message : la signature ne sera jamais comptée et ses données seront effacées d’ici {days} jours.\n\
        Pour retirer votre signature plus tard, ouvrez {withdraw}",
    confirm_heading: "Confirmez votre signature",
    confirm_intro: "Vous avez signé « {title} ». Appuyez sur le bouton pour confirmer votre signature, afin qu’elle soit comptée.",
    confirm_button: "Confirmer ma signature",
    confirmed: "Merci : votre signature est confirmée et comptée.",
    unknown_link: "Ce lien n’est pas valide. Il a peut-être été copié incomplètement, ou remplacé par un message plus récent.",
    expired_link: "Ce lien a expiré et la signature correspondante a été effacée. Vous pouvez signer à nouveau.",
    withdraw_subject: "Retirer votre signature : {title}",
    withdraw_body: "Quelqu’un, sans doute vous, a demandé à retirer la signature donnée avec cette adresse à « {title} ».\n\n\
        Pour la retirer et effacer vos données, ouvrez ce lien et appuyez sur le bouton :\n\
        {link}\n\n\
        Votre reçu : {receipt}\n\n\
        Si vous n’avez rien demandé, ignorez ce message : rien ne change.",
    withdraw_heading: "Retirer votre signature",
    withdraw_intro: "Appuyez sur le bouton pour retirer votre signature de « {title} ». Votre nom et votre adresse sont effacés, et votre signature n’est plus comptée.",
    withdraw_button: "Retirer ma signature",
    withdrawn: "Votre signature est retirée et vos données effacées. Vous pouvez signer de nouveau à tout moment.",
    withdraw_expired: "Ce lien a expiré. Demandez-en un nouveau pour retirer votre signature.",
    request_intro: "Saisissez l’adresse e-mail avec laquelle vous avez signé « {title} ». Si elle a signé, un lien pour retirer la signature lui est envoyé.",
    request_label: "Adresse e-mail",
    request_button: "M’envoyer le lien",
    request_sent: "Si cette adresse a signé, un message avec un lien pour retirer la signature est en route.",
};

const RU: Notices = Notices {
    language: "ru",
    confirm_subject: "Подтвердите свою подпись: {title}",
    confirm_body: "Спасибо, что подписали «{title}».\n\n\
        Ваша подпись будет учтена только после подтверждения. Откройте эту ссылку и нажмите кнопку, чтобы подтвердить:\n\
        {link}\n\n\
        Номер вашей квитанции: {receipt}\n\n\
        Если вы не подписывали, просто не обращайте внимания на это письмо: подпись не будет учтена, а её данные будут удалены (срок — {days} дн.).\n\
        Чтобы позже отозвать подпись, откройте {withdraw}",
    confirm_heading: "Подтвердите свою подпись",
    confirm_intro: "Вы подписали «{title}». Нажмите кнопку, чтобы подтвердить подпись: после этого она будет учтена.",
    confirm_button: "Подтвердить подпись",
    confirmed: "Спасибо: ваша подпись подтверждена и учтена.",
    unknown_link: "Эта ссылка недействительна. Возможно, она скопирована не полностью или заменена более новым письмом.",
    expired_link: "Срок действия ссылки истёк, и подпись удалена. Вы можете подписать снова.",
    withdraw_subject: "Отзыв подписи: {title}",
    withdraw_body: "Кто-то, скорее всего вы, попросил отозвать подпись под «{title}», оставленную с этим адресом.\n\n\
        Чтобы отозвать её и удалить ваши данные, откройте эту ссылку и нажмите кнопку:\n\
        {link}\n\n\
        Номер вашей квитанции: {receipt}\n\n\
        Если вы ничего не просили, не обращайте внимания на это письмо: ничего не изменится.",
    withdraw_heading: "Отозвать подпись",
    withdraw_intro: "Нажмите кнопку, чтобы отозвать свою подпись под «{title}». Ваше имя и адрес будут удалены, а подпись перестанет учитываться.",
    withdraw_button: "Отозвать подпись",
    withdrawn: "Ваша подпись отозвана, а данные удалены. Вы можете подписать снова в любое время.",
    withdraw_expired: "Срок действия ссылки истёк. Запросите новую, чтобы отозвать подпись.",
    request_intro: "Введите адрес электронной почты, с которым вы подписали «{title}». Если с него подписывались, на него придёт ссылка для отзыва подписи.",
    request_label: "Адрес электронной почты",
    request_button: "Прислать ссылку",
    request_sent: "Если с этого адреса подписывались, письмо со ссылкой для отзыва подписи уже в пути.",
};

const TR: Notices = Notices {
    language: "tr",
    confirm_subject: "İmzanızı onaylayın: {title}",
    confirm_body: "“{title}” metnini imzaladığınız için teşekkür ederiz.\n\n\
        İmzanız, siz onaylayana kadar sayılmaz. Onaylamak için bu bağlantıyı açın ve düğmeye basın:\n\
        {link}\n\n\
        Makbuz numaranız: {receipt}\n\n\
        İmzalamadıysanız bu iletiyi dikkate almayın: imza hiçbir zaman sayılmaz ve verileri {days} gün içinde silinir.\n\
        İmzanızı daha sonra geri çekmek için şu adresi açın: {withdraw}",
    confirm_heading: "İmzanızı onaylayın",
    confirm_intro: "“{title}” metnini imzaladınız. İmzanızın sayılması için düğmeye basarak onaylayın.",
    confirm_button: "İmzamı onayla",
    confirmed: "Teşekkürler: imzanız onaylandı ve sayıldı.",
    unknown_link: "Bu bağlantı geçerli değil. Eksik kopyalanmış ya da daha yeni bir iletiyle değiştirilmiş olabilir.",
    expired_link: "Bu bağlantının süresi doldu ve ilgili imza silindi. Yeniden imzalayabilirsiniz.",
    withdraw_subject: "İmzanızı geri çekin: {title}",
    withdraw_body: "Biri, büyük olasılıkla siz, bu adresle “{title}” metnine verilen imzanın geri çekilmesini istedi.\n\n\
        İmzayı geri çekmek ve verilerinizi silmek için bu bağlantıyı açın ve düğmeye basın:\n\
        {link}\n\n\
        Makbuz numaranız: {receipt}\n\n\
        Böyle bir istekte bulunmadıysanız bu iletiyi dikkate almayın: hiçbir şey değişmez.",
    withdraw_heading: "İmzanızı geri çekin",
    withdraw_intro: "“{title}” metnine verdiğiniz imzayı geri çekmek için düğmeye basın. Adınız ve adresiniz silinir, imzanız artık sayılmaz.",
    withdraw_button: "İmzamı geri çek",
    withdrawn: "İmzanız geri çekildi ve verileriniz silindi. İstediğiniz zaman yeniden imzalayabilirsiniz.",
    withdraw_expired: "Bu bağlantının süresi doldu. İmzanızı geri çekmek için yeni bir bağlantı isteyin.",
    request_intro: "“{title}” metnini imzaladığınız e-posta adresini girin. Bu adresle imza verildiyse, imzayı geri çekmek için bir bağlantı gönderilir.",
    request_label: "E-posta adresi",
    request_button: "Bağlantıyı gönder",
    request_sent: "Bu adresle imza verildiyse, imzayı geri çekme bağlantısını içeren bir ileti yolda.",
};

const AZ: Notices = Notices {
    language: "az",
    confirm_subject: "İmzanızı təsdiqləyin: {title}",
    confirm_body: "“{title}” sənədini imzaladığınız üçün təşəkkür edirik.\n\n\
        İmzanız siz təsdiqləyənə qədər sayılmır. Təsdiqləmək üçün bu keçidi açın və düyməni basın:\n\
        {link}\n\n\
        Qəbzinizin nömrəsi: {receipt}\n\n\
        Əgər imzalamamısınızsa, bu məktubu nəzərə almayın: imza heç vaxt sayılmayacaq və məlumatları {days} gün ərzində silinəcək.\n\
        İmzanızı sonradan geri götürmək üçün bu ünvanı açın: {withdraw}",
    confirm_heading: "İmzanızı təsdiqləyin",
    confirm_intro: "Siz “{title}” sənədini imzaladınız. İmzanızın sayılması üçün düyməni basaraq onu təsdiqləyin.",
    confirm_button: "İmzamı təsdiqlə",
    confirmed: "Təşəkkür edirik: imzanız təsdiqləndi və sayıldı.",
    unknown_link: "Bu keçid etibarlı deyil. Natamam köçürülmüş və ya daha yeni məktubla əvəz olunmuş ola bilər.",
    expired_link: "Bu keçidin müddəti bitib və aid olduğu imza silinib. Yenidən imzalaya bilərsiniz.",
    withdraw_subject: "İmzanızı geri götürün: {title}",
    withdraw_body: "Kimsə, çox güman ki, siz, bu ünvanla “{title}” sənədinə verilmiş imzanın geri götürülməsini istədi.\n\n\
        İmzanı geri götürmək və məlumatlarınızı silmək üçün bu keçidi açın və düyməni basın:\n\
        {link}\n\n\
        Qəbzinizin nömrəsi: {receipt}\n\n\
        Əgər bunu istəməmisinizsə, bu məktubu nəzərə almayın: heç nə dəyişməyəcək.",
    withdraw_heading: "İmzanızı geri götürün",
    withdraw_intro: "“{title}” sənədinə verdiyiniz imzanı geri götürmək üçün düyməni basın. Adınız və ünvanınız silinəcək, imzanız artıq sayılmayacaq.",
    withdraw_button: "İmzamı geri götür",
    withdrawn: "İmzanız geri götürüldü və məlumatlarınız silindi. İstənilən vaxt yenidən imzalaya bilərsiniz.",
    withdraw_expired: "Bu keçidin müddəti bitib. İmzanızı geri götürmək üçün yenisini istəyin.",
    request_intro: "“{title}” sənədini imzaladığınız e-poçt ünvanını daxil edin. Bu ünvanla imza verilibsə, imzanı geri götürmək üçün ona keçid göndəriləcək.",
    request_label: "E-poçt ünvanı",
    request_button: "Keçidi göndərin",
    request_sent: "Bu ünvanla imza verilibsə, imzanı geri götürmək üçün keçid olan məktub yoldadır.",
};

const AR: Notices = Notices {
    language: "ar",
    confirm_subject: "يرجى تأكيد توقيعك: {title}",
    confirm_body: "شكرًا لتوقيعك على «{title}».\n\n\
        لن يُحتسب توقيعك حتى تؤكده. افتح هذا الرابط واضغط على الزر للتأكيد:\n\
        {link}\n\n\
        رقم إيصالك: {receipt}\n\n\
        إذا لم تكن أنت من وقّع، فتجاهل هذه الرسالة: لن يُحتسب التوقيع أبدًا، وستُحذف بياناته خلال {days} يومًا.\n\
        لسحب توقيعك لاحقًا، افتح {withdraw}",
    confirm_heading: "أكّد توقيعك",
    confirm_intro: "لقد وقّعت على «{title}». اضغط على الزر لتأكيد توقيعك حتى يُحتسب.",
    confirm_button: "تأكيد توقيعي",
    confirmed: "شكرًا لك: تم تأكيد توقيعك واحتسابه.",
    unknown_link: "هذا الرابط غير صالح. ربما نُسخ بشكل ناقص، أو استُبدل برسالة أحدث.",
    expired_link: "انتهت صلاحية هذا الرابط وحُذف التوقيع المرتبط به. يمكنك التوقيع من جديد.",
    withdraw_subject: "سحب توقيعك: {title}",
    withdraw_body: "طلب شخصٌ ما، وعلى الأرجح أنت، سحب التوقيع المقدَّم بهذا العنوان على «{title}».\n\n\
        لسحبه ومحو بياناتك، افتح هذا الرابط واضغط على الزر:\n\
        {link}\n\n\
        رقم إيصالك: {receipt}\n\n\
        إذا لم تطلب ذلك، فتجاهل هذه الرسالة: لن يتغير شيء.",
    withdraw_heading: "اسحب توقيعك",
    withdraw_intro: "اضغط على الزر لسحب توقيعك من «{title}». سيُمحى اسمك وعنوانك، ولن يُحتسب توقيعك بعد الآن.",
    withdraw_button: "سحب توقيعي",
    withdrawn: "تم سحب توقيعك ومحو بياناتك. يمكنك التوقيع من جديد في أي وقت.",
    withdraw_expired: "انتهت صلاحية هذا الرابط. اطلب رابطًا جديدًا لسحب توقيعك.",
    request_intro: "أدخل عنوان البريد الإلكتروني الذي وقّعت به على «{title}». إذا كان قد وقّع، فسيُرسَل إليه رابط لسحب التوقيع.",
    request_label: "عنوان البريد الإلكتروني",
    request_button: "أرسل لي الرابط",
    request_sent: "إذا كان هذا العنوان قد وقّع، فرسالة تحتوي على رابط لسحب التوقيع في طريقها إليه.",
};

/// Every language with built-in words, English first (the fallback).
pub const BUILT_IN: [&Notices; 6] = [&EN, &FR, &RU, &TR, &AZ, &AR];

/// The service's words for `locale` (`fr-CA` takes French), English when
/// there are none in its language.
pub fn notices(locale: &str) -> &'static Notices {
    let language = language(locale);
    BUILT_IN
        .into_iter()
        .find(|n| n.language.eq_ignore_ascii_case(language))
        .unwrap_or(&EN)
}

fn language(locale: &str) -> &str {
    locale.split(['-', '_']).next().unwrap_or(locale)
}

/// Whether `locale` is written right to left: by its script subtag when it
/// has one (`az-Arab`), else by its language's usual script.
pub fn right_to_left(locale: &str) -> bool {
    const RTL_SCRIPTS: [&str; 7] = ["arab", "hebr", "syrc", "thaa", "nkoo", "adlm", "rohg"];
    const RTL_LANGUAGES: [&str; 12] = [
        "ar", "fa", "he", "ur", "ps", "dv", "yi", "ckb", "sd", "ug", "syr", "ku-arab",
    ];
    let mut parts = locale.split(['-', '_']).skip(1);
    if let Some(script) = parts.find(|p| p.len() == 4) {
        return RTL_SCRIPTS.contains(&script.to_ascii_lowercase().as_str());
    }
    RTL_LANGUAGES.contains(&language(locale).to_ascii_lowercase().as_str())
}

/// What fills a text's placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    pub title: &'a str,
    pub link: &'a str,
    pub receipt: Uuid,
    pub days: u64,
    pub withdraw: &'a str,
}

/// `text` with `{title}`, `{link}`, `{receipt}`, `{days}` and `{withdraw}`
/// filled in, each through `escape` (for HTML); any other brace is left as
/// it is, so an organizer's own wording cannot break a message.
pub fn fill(text: &str, p: &Placeholders, escape: impl Fn(&str) -> String) -> String {
    let receipt = p.receipt.to_string();
    let days = p.days.to_string();
    let values: [(&str, &str); 5] = [
        ("{title}", p.title),
        ("{link}", p.link),
        ("{receipt}", &receipt),
        ("{days}", &days),
        ("{withdraw}", p.withdraw),
    ];
    let mut out = String::with_capacity(text.len() + 128);
    let mut rest = text;
    'scan: while let Some(at) = rest.find('{') {
        out.push_str(&escape(&rest[..at]));
        for (name, value) in values {
            if rest[at..].starts_with(name) {
                out.push_str(&escape(value));
                rest = &rest[at + name.len()..];
                continue 'scan;
            }
        }
        out.push_str(&escape("{"));
        rest = &rest[at + 1..];
    }
    out.push_str(&escape(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_placeholder_its_text_needs() {
        for n in BUILT_IN {
            assert!(n.confirm_subject.contains("{title}"), "{}", n.language);
            for p in ["{title}", "{link}", "{receipt}", "{days}", "{withdraw}"] {
                assert!(n.confirm_body.contains(p), "{} lacks {p}", n.language);
            }
            assert!(n.confirm_intro.contains("{title}"), "{}", n.language);
            assert!(n.withdraw_subject.contains("{title}"), "{}", n.language);
            for p in ["{title}", "{link}", "{receipt}"] {
                assert!(n.withdraw_body.contains(p), "{} lacks {p}", n.language);
            }
            assert!(n.withdraw_intro.contains("{title}"), "{}", n.language);
            assert!(n.request_intro.contains("{title}"), "{}", n.language);
        }
    }

    #[test]
    fn a_locale_takes_its_language_and_falls_back_to_english() {
        assert_eq!(notices("fr-CA").language, "fr");
        assert_eq!(notices("az-Latn").language, "az");
        assert_eq!(notices("AR").language, "ar");
        assert_eq!(notices("de").language, "en");
        assert!(right_to_left("ar") && right_to_left("fa-IR") && right_to_left("az-Arab"));
        assert!(!right_to_left("az-Latn") && !right_to_left("en") && !right_to_left("tr"));
    }

    #[test]
    fn placeholders_are_filled_and_stray_braces_kept() {
        let p = Placeholders {
            title: "<Peace>",
            link: "https://x.example/confirm/t",
            receipt: Uuid::nil(),
            days: 7,
            withdraw: "https://x.example/withdraw",
        };
        let plain = fill("{title} {unknown} {days}d {link", &p, str::to_owned);
        assert_eq!(plain, "<Peace> {unknown} 7d {link");
        let html = fill("<b>{title}</b>", &p, |s| s.replace('<', "&lt;"));
        assert_eq!(html, "&lt;b>&lt;Peace>&lt;/b>");
    }
}
